//! The TOML schema as serde reads it, and its validation into a [`Plan`].

use super::*;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    stages: Option<Spanned<Vec<Stage>>>,
    generate: Option<RawGenerate>,
    plot: Option<RawPlot>,
    relax: Option<RawRelax>,
    solver_bench: Option<RawSolverBench>,
    gp: Option<RawGp>,
    train: Option<RawTrain>,
    mlvms: Option<RawMlvms>,
    mlvms_transient: Option<RawMlvmsTransient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    data: Spanned<String>,
    input: Option<String>,
    output: Option<String>,
    train_samples: Spanned<usize>,
    test_samples: Spanned<usize>,
    epochs: Option<Spanned<usize>>,
    batch_size: Option<Spanned<usize>>,
    learning_rate: Option<Spanned<f64>>,
    optimizer: Option<OptimizerName>,
    weight_decay: Option<Spanned<f64>>,
    schedule: Option<ScheduleName>,
    step_size: Option<Spanned<usize>>,
    gamma: Option<Spanned<f64>>,
    min_learning_rate: Option<Spanned<f64>>,
    patience: Option<Spanned<usize>>,
    factor: Option<Spanned<f64>>,
    loss: Option<LossName>,
    early_stopping: Option<Spanned<usize>>,
    subsample: Option<Spanned<usize>>,
    seed: Option<u64>,
    fno: Option<Spanned<FnoPlan>>,
    tfno: Option<Spanned<TfnoPlan>>,
    ffno: Option<Spanned<FfnoPlan>>,
    deeponet: Option<Spanned<DeepOnetPlan>>,
    output_dir: Spanned<String>,
    panels: Option<Spanned<usize>>,
    format: Option<ImageFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMlvmsTransient {
    dim: Spanned<usize>,
    coarse: Option<Spanned<usize>>,
    levels: Spanned<Vec<MlvmsLevelPlan>>,
    conductivity: Option<Spanned<f64>>,
    capacity: Option<Spanned<f64>>,
    power: Spanned<f64>,
    radius: Spanned<f64>,
    start: Spanned<Vec<f64>>,
    velocity: Spanned<Vec<f64>>,
    dt: Spanned<f64>,
    steps: Spanned<usize>,
    theta: Option<Spanned<f64>>,
    recentre_fraction: Option<Spanned<f64>>,
    output_dir: Spanned<String>,
    format: Option<ImageFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMlvms {
    dim: Spanned<usize>,
    coarse: Option<Spanned<usize>>,
    conductivity: Option<Spanned<f64>>,
    centre: Spanned<Vec<f64>>,
    radius: Spanned<f64>,
    amplitude: Option<Spanned<f64>>,
    levels: Spanned<Vec<MlvmsLevelPlan>>,
    uniform: Option<Spanned<Vec<usize>>>,
    chidenn: Option<RawMlvmsChidenn>,
    output_dir: Spanned<String>,
    format: Option<ImageFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMlvmsChidenn {
    coarse: Option<Spanned<Vec<usize>>>,
    patch_layers: Option<Spanned<usize>>,
    degree: Option<Spanned<usize>>,
    dilation: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGp {
    pde: Spanned<GpPde>,
    velocity: Option<Spanned<f64>>,
    solution: Spanned<String>,
    dim: Option<Spanned<usize>>,
    domain: Option<Spanned<[f64; 2]>>,
    points: Option<Spanned<usize>>,
    test_points: Option<Spanned<usize>>,
    envelope: Option<GpEnvelope>,
    components: Option<Spanned<usize>>,
    max_freq: Option<Spanned<f64>>,
    length_scale: Option<Spanned<f64>>,
    jitter: Option<Spanned<f64>>,
    boundary_weight: Option<Spanned<f64>>,
    steps: Option<Spanned<usize>>,
    learning_rate: Option<Spanned<f64>>,
    final_learning_rate: Option<Spanned<f64>>,
    decay_fraction: Option<Spanned<f64>>,
    polish: Option<bool>,
    polish_every: Option<Spanned<usize>>,
    checkpoints: Option<Spanned<usize>>,
    baseline: Option<bool>,
    output_dir: Spanned<String>,
    format: Option<ImageFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSolverBench {
    problem: BenchProblem,
    grid: Spanned<usize>,
    systems: Option<Spanned<usize>>,
    seed: Option<u64>,
    tolerance: Option<Spanned<f64>>,
    max_iterations: Option<Spanned<usize>>,
    ordering: Option<OrderingName>,
    threads: Option<Spanned<usize>>,
    alpha: Option<Spanned<f64>>,
    tau: Option<Spanned<f64>>,
    wavenumber: Option<Spanned<f64>>,
    output_dir: Option<Spanned<String>>,
    export_dir: Option<Spanned<String>>,
    methods: Spanned<Vec<RawBenchMethod>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenchMethod {
    method: SolverMethod,
    preconditioner: Option<Spanned<PreconditionerKind>>,
    omega: Option<Spanned<RawOmega>>,
    restart: Option<Spanned<usize>>,
    recycle: Option<Spanned<usize>>,
    recycle_update: Option<Spanned<RecycleUpdateName>>,
    warm_start: Option<bool>,
    ordering: Option<OrderingName>,
    fresh: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelax {
    sequence: RelaxSequenceKind,
    output_dir: Spanned<String>,
    seed: Option<u64>,
    repeats: Option<Spanned<u64>>,
    tolerance: Option<Spanned<f64>>,
    max_iterations: Option<Spanned<usize>>,
    learners: Option<Vec<LearnerName>>,
    loss_scale: Option<Spanned<f64>>,
    learning_rate: Option<Spanned<f64>>,
    gamma0: Option<Spanned<f64>>,
    bins: Option<Spanned<usize>>,
    degree: Option<Spanned<usize>>,
    format: Option<ImageFormat>,
    arms: Option<RawArms>,
    shifted_laplacian: Option<RawShiftedLaplacian>,
    heat: Option<RawHeat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArms {
    min: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    count: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShiftedLaplacian {
    grid: Option<Spanned<usize>>,
    instances: Option<Spanned<usize>>,
    variance: Option<Variance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeat {
    grid: Option<Spanned<usize>>,
    steps: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerate {
    problem: Spanned<String>,
    output: Spanned<String>,
    samples: Spanned<u64>,
    seed: Option<u64>,
    checkpoint_every: Option<Spanned<u64>>,
    on_failure: Option<OnFailure>,
    precision: Option<Precision>,
    darcy: Option<RawDarcy>,
    poisson: Option<RawPoisson>,
    helmholtz: Option<RawHelmholtz>,
    heat: Option<RawHeatFamily>,
    burgers: Option<RawBurgers>,
    navier_stokes: Option<RawNavierStokes>,
    mlvms: Option<RawBeam>,
    solver: Option<RawSolver>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBeam {
    resolution: Option<Spanned<usize>>,
    coarse: Option<Spanned<usize>>,
    levels: Option<Spanned<Vec<MlvmsLevelPlan>>>,
    conductivity: Option<Spanned<f64>>,
    radius: Option<Spanned<f64>>,
    power: Option<Spanned<RawRange>>,
    margin: Option<Spanned<f64>>,
    basis: Option<BasisName>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDarcy {
    resolution: Option<Spanned<usize>>,
    centring: Option<Centring>,
    forcing: Option<Spanned<f64>>,
    form: Option<DarcyFormName>,
    coefficient: Option<RawCoefficient>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrf {
    alpha: Option<Spanned<f64>>,
    tau: Option<Spanned<f64>>,
    sigma: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoisson {
    dim: Option<Spanned<usize>>,
    resolution: Option<Spanned<usize>>,
    homogeneous: Option<bool>,
    source: Option<RawGrf>,
    boundary: Option<RawGrf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawRange {
    One(f64),
    Two(Vec<f64>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelmholtz {
    resolution: Option<Spanned<usize>>,
    wavenumber: Option<Spanned<RawRange>>,
    variation: Option<Spanned<f64>>,
    boundary: Option<HelmholtzBoundaryName>,
    field: Option<RawGrf>,
    source: Option<RawGrf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawKappa {
    Constant(f64),
    Named(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeatFamily {
    resolution: Option<Spanned<usize>>,
    scheme: Option<TimeSchemeName>,
    dt: Option<Spanned<f64>>,
    steps: Option<Spanned<usize>>,
    every: Option<Spanned<usize>>,
    kappa: Option<Spanned<RawKappa>>,
    source: Option<Spanned<f64>>,
    initial: Option<RawGrf>,
    coefficient: Option<RawCoefficient>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurgers {
    resolution: Option<Spanned<usize>>,
    viscosity: Option<Spanned<f64>>,
    final_time: Option<Spanned<f64>>,
    dt: Option<Spanned<f64>>,
    snapshots: Option<Spanned<usize>>,
    initial: Option<RawGrf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNavierStokes {
    resolution: Option<Spanned<usize>>,
    viscosity: Option<Spanned<f64>>,
    final_time: Option<Spanned<f64>>,
    dt: Option<Spanned<f64>>,
    snapshots: Option<Spanned<usize>>,
    forcing: Option<Spanned<f64>>,
    initial: Option<RawGrf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoefficient {
    kind: Option<CoefficientKind>,
    alpha: Option<Spanned<f64>>,
    tau: Option<Spanned<f64>>,
    sigma: Option<Spanned<f64>>,
    high: Option<Spanned<f64>>,
    low: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSolver {
    method: Option<SolverMethod>,
    preconditioner: Option<Spanned<PreconditionerKind>>,
    omega: Option<Spanned<RawOmega>>,
    restart: Option<Spanned<usize>>,
    recycle: Option<Spanned<usize>>,
    recycle_update: Option<Spanned<RecycleUpdateName>>,
    warm_start: Option<bool>,
    ordering: Option<OrderingName>,
    chains: Option<Spanned<usize>>,
    tolerance: Option<Spanned<f64>>,
    max_iterations: Option<Spanned<usize>>,
}

/// The method keys shared by `[generate.solver]` and `[[solver_bench.methods]]`.
struct MethodFields<'a> {
    /// `generate.solver` or `solver_bench.methods[i]`, for error messages.
    prefix: String,
    /// Where the table starts, for errors about keys that are missing.
    at: usize,
    method: SolverMethod,
    preconditioner: &'a Option<Spanned<PreconditionerKind>>,
    omega: &'a Option<Spanned<RawOmega>>,
    restart: &'a Option<Spanned<usize>>,
    recycle: &'a Option<Spanned<usize>>,
    recycle_update: &'a Option<Spanned<RecycleUpdateName>>,
    warm_start: Option<bool>,
    /// `omega = "learned"` (and SSOR without omega) is allowed: only in [generate.solver].
    learned_allowed: bool,
}

fn check_method(cx: &Ctx, f: MethodFields) -> Result<MethodPlan, ConfigError> {
    let key = |k: &str| format!("{}.{k}", f.prefix);
    let method = f.method;
    let default_precond = match method {
        SolverMethod::Amg => PreconditionerKind::None,
        _ if f.learned_allowed => PreconditionerKind::Jacobi,
        _ => PreconditionerKind::None,
    };
    let preconditioner = f
        .preconditioner
        .as_ref()
        .map_or(default_precond, |p| *p.get_ref());
    if let (SolverMethod::Amg, Some(p)) = (method, f.preconditioner) {
        if *p.get_ref() != PreconditionerKind::None {
            return cx.err(
                p.span().start,
                &key("preconditioner"),
                "method = \"amg\" is AMG V-cycles as the solver; use method = \"cg\" with preconditioner = \"amg\" for AMG-preconditioned CG",
            );
        }
    }
    let omega = match (f.omega, preconditioner) {
        (None, PreconditionerKind::Ssor) if f.learned_allowed => Some(OmegaPlan::Learned),
        (None, PreconditionerKind::Ssor) => {
            return cx.err(
                f.at,
                &key("omega"),
                "missing key: preconditioner = \"ssor\" needs omega, a number in (0, 2)",
            )
        }
        (None, _) => None,
        (Some(w), PreconditionerKind::Ssor) => Some(match w.get_ref() {
            RawOmega::Number(v) if *v > 0.0 && *v < 2.0 => OmegaPlan::Fixed(*v),
            RawOmega::Word(word) if word == "learned" && f.learned_allowed => OmegaPlan::Learned,
            other => {
                let got = match other {
                    RawOmega::Number(v) => v.to_string(),
                    RawOmega::Word(word) => format!("\"{word}\""),
                };
                let expected = if f.learned_allowed {
                    "a number in (0, 2) or \"learned\""
                } else {
                    "a number in (0, 2)"
                };
                return cx.err(
                    w.span().start,
                    &key("omega"),
                    format!("expected {expected}, got {got}"),
                );
            }
        }),
        (Some(w), _) => {
            return cx.err(
                w.span().start,
                &key("omega"),
                "only applies to preconditioner = \"ssor\"",
            )
        }
    };
    let restart = match f.restart {
        None => None,
        Some(r) if !method.takes_restart() => {
            return cx.err(
                r.span().start,
                &key("restart"),
                "only applies to method = \"gmres\", \"fgmres\" or \"gcrodr\"",
            )
        }
        Some(_) => Some(cx.num(
            f.restart,
            defaults::RESTART,
            &key("restart"),
            |v| (1..=1000).contains(&v),
            "an integer from 1 to 1000",
        )?),
    };
    let recycle = match f.recycle {
        None => None,
        Some(r) if !method.takes_recycle() => {
            return cx.err(
                r.span().start,
                &key("recycle"),
                "only applies to method = \"gcrodr\" or \"rcg\"",
            )
        }
        Some(r) => {
            let k = *r.get_ref();
            let limit = restart.unwrap_or(defaults::RESTART);
            if method == SolverMethod::Gcrodr && k >= limit {
                return cx.err(
                    r.span().start,
                    &key("recycle"),
                    format!("expected an integer below restart ({limit}), got {k}"),
                );
            }
            if k > 200 {
                return cx.err(
                    r.span().start,
                    &key("recycle"),
                    format!("expected an integer from 0 to 200, got {k}"),
                );
            }
            Some(k)
        }
    };
    let recycle_update = match (f.recycle_update, method) {
        (Some(u), SolverMethod::Gcrodr) => Some(*u.get_ref()),
        (Some(u), _) => {
            return cx.err(
                u.span().start,
                &key("recycle_update"),
                "only applies to method = \"gcrodr\"",
            )
        }
        (None, SolverMethod::Gcrodr) => Some(RecycleUpdateName::Cycle),
        (None, _) => None,
    };
    // Defaults are written out so the plan shows what runs.
    let restart = restart.or(method.takes_restart().then_some(defaults::RESTART));
    let recycle = recycle.or(match method {
        SolverMethod::Gcrodr => {
            Some(defaults::GCRODR_RECYCLE.min(restart.unwrap_or(defaults::RESTART) - 1))
        }
        SolverMethod::Rcg => Some(defaults::RCG_RECYCLE),
        _ => None,
    });
    Ok(MethodPlan {
        method,
        preconditioner,
        omega,
        restart,
        recycle,
        recycle_update,
        warm_start: f.warm_start.unwrap_or(false),
    })
}

/// `omega = 1.5` or `omega = "learned"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawOmega {
    Number(f64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlot {
    input: Option<Spanned<String>>,
    output_dir: Spanned<String>,
    samples: Option<Spanned<usize>>,
    format: Option<ImageFormat>,
}

/// Validation context: the file, its text and the folder relative paths resolve against.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn err<T>(&self, at: usize, key: &str, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError::at(
            self.path,
            self.text,
            at,
            Some(key.to_string()),
            message.into(),
        ))
    }

    /// An optional number, defaulted, that must satisfy `ok`; `expected` says what `ok` checks.
    fn num<T: Copy + std::fmt::Display>(
        &self,
        value: &Option<Spanned<T>>,
        default: T,
        key: &str,
        ok: impl Fn(T) -> bool,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if ok(*v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => self.err(
                v.span().start,
                key,
                format!("expected {expected}, got {}", v.get_ref()),
            ),
        }
    }

    /// `value` resolved against the config's folder, with `.` and `..` removed lexically.
    fn path(&self, value: &str) -> PathBuf {
        use std::path::Component;
        let joined = self.dir.join(value);
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    let popped = matches!(out.components().next_back(), Some(Component::Normal(_)))
                        && out.pop();
                    if !popped {
                        out.push("..");
                    }
                }
                other => out.push(other),
            }
        }
        if out.as_os_str().is_empty() {
            out.push(".");
        }
        out
    }
}

fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

pub(super) fn check(raw: RawConfig, path: &Path, text: &str) -> Result<Plan, ConfigError> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let cx = Ctx { path, text, dir };

    let generate = raw
        .generate
        .as_ref()
        .map(|g| check_generate(&cx, g))
        .transpose()?;

    let plot = match &raw.plot {
        None => None,
        Some(p_ref) => {
            let input = match (&p_ref.input, &generate) {
                (Some(i), _) => cx.path(i.get_ref()),
                (None, Some(g)) => g.output.clone(),
                (None, None) => {
                    return cx.err(
                        text.find("[plot]").unwrap_or(0),
                        "plot.input",
                        "missing key: without a [generate] section, [plot] needs `input`, the dataset to plot",
                    )
                }
            };
            Some(PlotPlan {
                input,
                output_dir: cx.path(p_ref.output_dir.get_ref()),
                samples: cx.num(
                    &p_ref.samples,
                    defaults::PLOT_SAMPLES,
                    "plot.samples",
                    |v| (1..=16).contains(&v),
                    "an integer from 1 to 16",
                )?,
                format: p_ref.format.unwrap_or(ImageFormat::Png),
            })
        }
    };

    let relax = raw
        .relax
        .as_ref()
        .map(|r| check_relax(&cx, r, text))
        .transpose()?;

    let solver_bench = raw
        .solver_bench
        .as_ref()
        .map(|r| check_solver_bench(&cx, r))
        .transpose()?;

    let gp = raw.gp.as_ref().map(|r| check_gp(&cx, r)).transpose()?;
    let train = raw
        .train
        .as_ref()
        .map(|r| check_train(&cx, r))
        .transpose()?;
    let mlvms = raw
        .mlvms
        .as_ref()
        .map(|r| check_mlvms(&cx, r))
        .transpose()?;
    let mlvms_transient = raw
        .mlvms_transient
        .as_ref()
        .map(|r| check_mlvms_transient(&cx, r))
        .transpose()?;

    let stages = match &raw.stages {
        None => {
            let mut s = Vec::new();
            if generate.is_some() {
                s.push(Stage::Generate);
            }
            if train.is_some() {
                s.push(Stage::Train);
            }
            if plot.is_some() {
                s.push(Stage::Plot);
            }
            if relax.is_some() {
                s.push(Stage::Relax);
            }
            if gp.is_some() {
                s.push(Stage::Gp);
            }
            if mlvms.is_some() {
                s.push(Stage::Mlvms);
            }
            if mlvms_transient.is_some() {
                s.push(Stage::MlvmsTransient);
            }
            if s.is_empty() && solver_bench.is_none() {
                return cx.err(
                    0,
                    "stages",
                    "the config has nothing to run: add a [generate], [train], [plot], [relax], [gp], [mlvms] or [mlvms_transient] section",
                );
            }
            s
        }
        Some(list) => {
            let at = list.span().start;
            if list.get_ref().is_empty() {
                return cx.err(
                    at,
                    "stages",
                    "expected at least one of \"generate\", \"plot\"",
                );
            }
            let mut seen = Vec::new();
            for &stage in list.get_ref() {
                if seen.contains(&stage) {
                    return cx.err(
                        at,
                        "stages",
                        format!("stage \"{}\" is listed twice", stage.name()),
                    );
                }
                let present = match stage {
                    Stage::Generate => generate.is_some(),
                    Stage::Train => train.is_some(),
                    Stage::Plot => plot.is_some(),
                    Stage::Relax => relax.is_some(),
                    Stage::Gp => gp.is_some(),
                    Stage::Mlvms => mlvms.is_some(),
                    Stage::MlvmsTransient => mlvms_transient.is_some(),
                };
                if !present {
                    return cx.err(
                        at,
                        "stages",
                        format!(
                            "stage \"{0}\" is listed but the config has no [{0}] section",
                            stage.name()
                        ),
                    );
                }
                seen.push(stage);
            }
            // Stages always run in pipeline order, whatever order the list gives.
            Stage::ALL
                .iter()
                .copied()
                .filter(|s| seen.contains(s))
                .collect()
        }
    };

    Ok(Plan {
        stages,
        generate,
        plot,
        relax,
        solver_bench,
        gp,
        train,
        mlvms,
        mlvms_transient,
        source_path: path.to_path_buf(),
        source_text: text.to_string(),
    })
}

fn check_generate(cx: &Ctx, r: &RawGenerate) -> Result<GeneratePlan, ConfigError> {
    let samples = *r.samples.get_ref();
    if samples == 0 {
        return cx.err(
            r.samples.span().start,
            "generate.samples",
            "expected an integer ≥ 1, got 0",
        );
    }
    let output = r.output.get_ref();
    if output.trim().is_empty() {
        return cx.err(
            r.output.span().start,
            "generate.output",
            "expected a file path, got an empty string",
        );
    }
    if !output.ends_with(".h5") {
        return cx.err(
            r.output.span().start,
            "generate.output",
            format!("expected a path ending in .h5, got \"{output}\""),
        );
    }
    let name = r.problem.get_ref().as_str();
    if !ProblemPlan::NAMES.contains(&name) {
        return cx.err(
            r.problem.span().start,
            "generate.problem",
            format!(
                "unknown problem \"{name}\", expected one of: {}",
                ProblemPlan::NAMES.map(|n| format!("\"{n}\"")).join(", ")
            ),
        );
    }
    // A table for another family is a mistake the user should hear about.
    let given = [
        ("darcy", r.darcy.is_some()),
        ("poisson", r.poisson.is_some()),
        ("helmholtz", r.helmholtz.is_some()),
        ("heat", r.heat.is_some()),
        ("burgers", r.burgers.is_some()),
        ("navier_stokes", r.navier_stokes.is_some()),
        ("mlvms", r.mlvms.is_some()),
    ];
    for (table, present) in given {
        if present && table != name {
            let header = format!("[generate.{table}");
            return cx.err(
                cx.text.find(&header).unwrap_or(0),
                &format!("generate.{table}"),
                format!(
                    "this table configures problem \"{table}\", but generate.problem = \"{name}\""
                ),
            );
        }
    }
    let family = match name {
        "darcy" => ProblemPlan::Darcy(check_darcy(
            cx,
            r.darcy.as_ref().unwrap_or(&RawDarcy::default()),
        )?),
        "poisson" => ProblemPlan::Poisson(check_poisson(
            cx,
            r.poisson.as_ref().unwrap_or(&RawPoisson::default()),
        )?),
        "helmholtz" => ProblemPlan::Helmholtz(check_helmholtz(
            cx,
            r.helmholtz.as_ref().unwrap_or(&RawHelmholtz::default()),
        )?),
        "heat" => ProblemPlan::Heat(check_heat_family(
            cx,
            r.heat.as_ref().unwrap_or(&RawHeatFamily::default()),
        )?),
        "burgers" => ProblemPlan::Burgers(check_burgers(
            cx,
            r.burgers.as_ref().unwrap_or(&RawBurgers::default()),
        )?),
        "mlvms" => ProblemPlan::Mlvms(check_beam(
            cx,
            r.mlvms.as_ref().unwrap_or(&RawBeam::default()),
        )?),
        _ => ProblemPlan::NavierStokes(check_navier_stokes(
            cx,
            r.navier_stokes
                .as_ref()
                .unwrap_or(&RawNavierStokes::default()),
        )?),
    };
    let solver = if ProblemPlan::solves_systems(name) {
        Some(check_generate_solver(cx, r, name, samples)?)
    } else {
        if r.solver.is_some() {
            return cx.err(
                cx.text.find("[generate.solver]").unwrap_or(0),
                "generate.solver",
                format!("\"{name}\" is solved by a pseudo-spectral time stepper, not a linear solver; remove [generate.solver]"),
            );
        }
        None
    };
    Ok(GeneratePlan {
        problem: family.name().to_string(),
        solver,
        family,
        output: cx.path(output),
        samples,
        seed: r.seed.unwrap_or(defaults::SEED),
        checkpoint_every: cx.num(
            &r.checkpoint_every,
            defaults::CHECKPOINT_EVERY,
            "generate.checkpoint_every",
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        on_failure: r.on_failure.unwrap_or(OnFailure::Fail),
        precision: r.precision.unwrap_or(Precision::F32),
    })
}

fn check_generate_solver(
    cx: &Ctx,
    r: &RawGenerate,
    name: &str,
    samples: u64,
) -> Result<SolverPlan, ConfigError> {
    let empty = RawSolver::default();
    let sv = r.solver.as_ref().unwrap_or(&empty);
    // Helmholtz defaults to GMRES with ILU(0), the pairing that converges on indefinite systems.
    let preconditioner = match (&sv.preconditioner, name, sv.method) {
        (None, "helmholtz", m) if m != Some(SolverMethod::Amg) => {
            Some(Spanned::new(0..0, PreconditionerKind::Ilu0))
        }
        (None, "mlvms", _) => Some(Spanned::new(0..0, PreconditionerKind::Amg)),
        (p, _, _) => p.clone(),
    };
    let method = check_method(
        cx,
        MethodFields {
            prefix: "generate.solver".into(),
            at: cx.text.find("[generate.solver]").unwrap_or(0),
            method: sv.method.unwrap_or(if name == "helmholtz" {
                SolverMethod::Gmres
            } else {
                SolverMethod::Cg
            }),
            preconditioner: &preconditioner,
            omega: &sv.omega,
            restart: &sv.restart,
            recycle: &sv.recycle,
            recycle_update: &sv.recycle_update,
            warm_start: sv.warm_start,
            learned_allowed: true,
        },
    )?;
    if name == "helmholtz" && matches!(method.method, SolverMethod::Cg | SolverMethod::Rcg) {
        return cx.err(
            cx.text.find("[generate.solver]").unwrap_or(0),
            "generate.solver.method",
            "Helmholtz is indefinite (and complex with the absorbing boundary), so CG does not apply; use \"gmres\", \"fgmres\", \"bicgstab\" or \"gcrodr\"",
        );
    }
    if name == "mlvms"
        && !(method.method == SolverMethod::Cg && method.preconditioner == PreconditionerKind::Amg)
    {
        return cx.err(
            cx.text.find("[generate.solver]").unwrap_or(0),
            "generate.solver.method",
            "ML-VMS solves its SPD multilevel system with AMG-preconditioned CG; use method = \"cg\" with preconditioner = \"amg\" (only tolerance and max_iterations are free)",
        );
    }
    if name != "darcy" && method.omega == Some(OmegaPlan::Learned) {
        return cx.err(
            sv.omega.as_ref().map_or(0, |w| w.span().start),
            "generate.solver.omega",
            "a learned ω is implemented for problem = \"darcy\"; give a number in (0, 2)",
        );
    }
    // Only Darcy carries solver state from sample to sample (chains in a sorted order). Elsewhere
    // each sample gets a fresh solver: GCRO-DR and recycled CG recycle within the sample's own
    // solve (and, for heat, from time step to time step).
    let across_samples = method.carries_state() && name == "darcy";
    if name != "darcy" {
        if let Some(c) = &sv.chains {
            return cx.err(
                c.span().start,
                "generate.solver.chains",
                format!("only \"darcy\" carries solver state across samples; each \"{name}\" sample is solved afresh, so remove it"),
            );
        }
        if sv.ordering.is_some() {
            return cx.err(
                cx.text.find("ordering").unwrap_or(0),
                "generate.solver.ordering",
                format!("only \"darcy\" carries solver state across samples; each \"{name}\" sample is solved afresh, so remove it"),
            );
        }
        if method.warm_start && name != "heat" {
            return cx.err(
                cx.text.find("warm_start").unwrap_or(0),
                "generate.solver.warm_start",
                format!("each \"{name}\" sample is one solve started afresh; there is no previous solution to start from"),
            );
        }
    }
    let stateful = across_samples;
    if stateful && method.omega == Some(OmegaPlan::Learned) {
        return cx.err(
            sv.omega.as_ref().map_or(0, |w| w.span().start),
            "generate.solver.omega",
            "a learned ω needs a method that solves each sample on its own; with recycling or warm starts, give a number in (0, 2)",
        );
    }
    if !stateful {
        if let Some(c) = &sv.chains {
            return cx.err(
                c.span().start,
                "generate.solver.chains",
                "only applies to methods that carry state between samples (gcrodr, rcg, or warm_start = true)",
            );
        }
    }
    Ok(SolverPlan {
        method,
        // The greedy tour is O(N²); past a few thousand samples the PCA + Hilbert order is the
        // one that finishes.
        ordering: stateful.then(|| {
            sv.ordering
                .unwrap_or(if samples <= defaults::GREEDY_MAX_SAMPLES {
                    OrderingName::Greedy
                } else {
                    OrderingName::PcaHilbert
                })
        }),
        chains: if stateful {
            Some(cx.num(
                &sv.chains,
                rayon::current_num_threads(),
                "generate.solver.chains",
                |v| v >= 1,
                "an integer ≥ 1",
            )?)
        } else {
            None
        },
        tolerance: cx.num(
            &sv.tolerance,
            defaults::TOLERANCE,
            "generate.solver.tolerance",
            |v| v > 0.0 && v < 1.0,
            "a number in (0, 1)",
        )?,
        max_iterations: cx.num(
            &sv.max_iterations,
            defaults::MAX_ITERATIONS,
            "generate.solver.max_iterations",
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
    })
}

fn check_grf(
    cx: &Ctx,
    raw: Option<&RawGrf>,
    prefix: &str,
    default: (f64, f64, Option<f64>),
) -> Result<GrfPlan, ConfigError> {
    let empty = RawGrf::default();
    let g = raw.unwrap_or(&empty);
    Ok(GrfPlan {
        alpha: cx.num(
            &g.alpha,
            default.0,
            &format!("{prefix}.alpha"),
            positive,
            "a positive number",
        )?,
        tau: cx.num(
            &g.tau,
            default.1,
            &format!("{prefix}.tau"),
            positive,
            "a positive number",
        )?,
        sigma: match &g.sigma {
            None => default.2,
            Some(_) => Some(cx.num(
                &g.sigma,
                1.0,
                &format!("{prefix}.sigma"),
                positive,
                "a positive number",
            )?),
        },
    })
}

fn resolution(
    cx: &Ctx,
    v: &Option<Spanned<usize>>,
    default: usize,
    key: &str,
    min: usize,
    even: bool,
) -> Result<usize, ConfigError> {
    let (ok, expected): (Box<dyn Fn(usize) -> bool>, String) = if even {
        (
            Box::new(move |v: usize| v >= min && v <= 16384 && v.is_multiple_of(2)),
            format!("an even integer from {min} to 16384"),
        )
    } else {
        (
            Box::new(move |v: usize| v >= min && v <= 16384),
            format!("an integer from {min} to 16384"),
        )
    };
    cx.num(v, default, key, ok, &expected)
}

fn check_poisson(cx: &Ctx, r: &RawPoisson) -> Result<PoissonPlan, ConfigError> {
    let p = "generate.poisson";
    let dim = cx.num(
        &r.dim,
        2,
        &format!("{p}.dim"),
        |v| (1..=3).contains(&v),
        "1, 2 or 3",
    )?;
    // A 3-D grid of s³ points: keep it to what one machine holds.
    let max = if dim == 3 { 512 } else { 16384 };
    if let Some(res) = &r.resolution {
        if *res.get_ref() > max {
            return cx.err(
                res.span().start,
                &format!("{p}.resolution"),
                format!(
                    "at most {max} points per side in {dim}-D, got {}",
                    res.get_ref()
                ),
            );
        }
    }
    Ok(PoissonPlan {
        dim,
        resolution: resolution(
            cx,
            &r.resolution,
            defaults::POISSON_RESOLUTION,
            &format!("{p}.resolution"),
            3,
            false,
        )?,
        homogeneous: r.homogeneous.unwrap_or(false),
        source: check_grf(
            cx,
            r.source.as_ref(),
            &format!("{p}.source"),
            (defaults::GRF_ALPHA, defaults::GRF_TAU, None),
        )?,
        boundary: check_grf(
            cx,
            r.boundary.as_ref(),
            &format!("{p}.boundary"),
            (defaults::POISSON_BOUNDARY_ALPHA, defaults::GRF_TAU, None),
        )?,
    })
}

/// A number (a fixed value) or `[min, max]` (drawn per sample), accepted when `ok(min, max)`.
fn range(
    cx: &Ctx,
    v: &Option<Spanned<RawRange>>,
    default: [f64; 2],
    key: &str,
    ok: fn(f64, f64) -> bool,
    expected: &str,
) -> Result<[f64; 2], ConfigError> {
    let Some(w) = v else {
        return Ok(default);
    };
    let pair = match w.get_ref() {
        RawRange::One(k) => Some([*k, *k]),
        RawRange::Two(v) if v.len() == 2 => Some([v[0], v[1]]),
        RawRange::Two(_) => None,
    };
    match pair {
        Some([lo, hi]) if ok(lo, hi) => Ok([lo, hi]),
        _ => cx.err(w.span().start, key, expected),
    }
}

fn check_beam(cx: &Ctx, r: &RawBeam) -> Result<BeamPlan, ConfigError> {
    let p = "generate.mlvms";
    let power = range(
        cx,
        &r.power,
        [0.5, 2.0],
        &format!("{p}.power"),
        |lo, hi| lo.is_finite() && lo <= hi && hi.is_finite(),
        "a number, or [min, max] with min ≤ max",
    )?;
    let levels = match &r.levels {
        None => vec![
            MlvmsLevelPlan {
                half_width: 0.15,
                refine: 4,
            },
            MlvmsLevelPlan {
                half_width: 0.05,
                refine: 4,
            },
        ],
        Some(l) => {
            check_mlvms_levels(cx, l, p)?;
            l.get_ref().clone()
        }
    };
    let widest = levels.first().map_or(0.0, |l| l.half_width);
    let margin = cx.num(
        &r.margin,
        (widest + 0.05).min(0.45),
        &format!("{p}.margin"),
        |v: f64| v > widest && v < 0.5,
        &format!("a number in ({widest}, 0.5): wider than the first box's half width, so every box stays inside the domain"),
    )?;
    Ok(BeamPlan {
        resolution: resolution(cx, &r.resolution, 64, &format!("{p}.resolution"), 4, false)?,
        coarse: cx.num(
            &r.coarse,
            32,
            &format!("{p}.coarse"),
            |v| (4..=4096).contains(&v),
            "an integer from 4 to 4096",
        )?,
        levels,
        conductivity: cx.num(
            &r.conductivity,
            1.0,
            &format!("{p}.conductivity"),
            positive,
            "a positive number",
        )?,
        radius: cx.num(
            &r.radius,
            0.02,
            &format!("{p}.radius"),
            |v: f64| v > 0.0 && v < 0.5,
            "a number in (0, 0.5)",
        )?,
        power,
        margin,
        basis: r.basis.unwrap_or(BasisName::Linear),
    })
}

fn check_helmholtz(cx: &Ctx, r: &RawHelmholtz) -> Result<HelmholtzPlan, ConfigError> {
    let p = "generate.helmholtz";
    let wavenumber = range(
        cx,
        &r.wavenumber,
        [defaults::HELMHOLTZ_WAVENUMBER; 2],
        &format!("{p}.wavenumber"),
        |lo, hi| lo > 0.0 && lo <= hi && hi.is_finite(),
        "a positive number, or [min, max] with 0 < min ≤ max",
    )?;
    Ok(HelmholtzPlan {
        resolution: resolution(
            cx,
            &r.resolution,
            defaults::HELMHOLTZ_RESOLUTION,
            &format!("{p}.resolution"),
            4,
            false,
        )?,
        wavenumber,
        variation: cx.num(
            &r.variation,
            0.0,
            &format!("{p}.variation"),
            |v| (0.0..1.0).contains(&v),
            "a number in [0, 1)",
        )?,
        boundary: r.boundary.unwrap_or(HelmholtzBoundaryName::Dirichlet),
        field: check_grf(
            cx,
            r.field.as_ref(),
            &format!("{p}.field"),
            (defaults::BENCH_ALPHA, defaults::BENCH_TAU, None),
        )?,
        source: check_grf(
            cx,
            r.source.as_ref(),
            &format!("{p}.source"),
            (defaults::GRF_ALPHA, defaults::GRF_TAU, None),
        )?,
    })
}

fn check_heat_family(cx: &Ctx, r: &RawHeatFamily) -> Result<HeatFamilyPlan, ConfigError> {
    let p = "generate.heat";
    let steps = cx.num(
        &r.steps,
        defaults::HEAT_FAMILY_STEPS,
        &format!("{p}.steps"),
        |v| v >= 1,
        "an integer ≥ 1",
    )?;
    let every = cx.num(
        &r.every,
        defaults::HEAT_EVERY.min(steps),
        &format!("{p}.every"),
        |v| v >= 1 && steps.is_multiple_of(v),
        &format!("an integer ≥ 1 that divides steps = {steps}"),
    )?;
    let kappa = match &r.kappa {
        None => KappaPlan::Constant(1.0),
        Some(k) => match k.get_ref() {
            RawKappa::Constant(v) if *v >= 0.0 && v.is_finite() => KappaPlan::Constant(*v),
            RawKappa::Named(n) if n == "switching" => KappaPlan::Named(KappaName::Switching),
            _ => {
                return cx.err(
                    k.span().start,
                    &format!("{p}.kappa"),
                    "a number ≥ 0, or \"switching\" for max(0.1 sin 2πt, −10 sin 2πt)",
                )
            }
        },
    };
    let coefficient = match &r.coefficient {
        None => None,
        Some(c) => Some(check_coefficient(cx, c, &format!("{p}.coefficient"))?),
    };
    Ok(HeatFamilyPlan {
        resolution: resolution(
            cx,
            &r.resolution,
            defaults::HEAT_RESOLUTION,
            &format!("{p}.resolution"),
            3,
            false,
        )?,
        scheme: r.scheme.unwrap_or(TimeSchemeName::CrankNicolson),
        dt: cx.num(
            &r.dt,
            defaults::HEAT_DT,
            &format!("{p}.dt"),
            positive,
            "a positive number",
        )?,
        steps,
        every,
        kappa,
        source: cx.num(
            &r.source,
            0.0,
            &format!("{p}.source"),
            f64::is_finite,
            "a finite number",
        )?,
        initial: check_grf(
            cx,
            r.initial.as_ref(),
            &format!("{p}.initial"),
            (defaults::GRF_ALPHA, defaults::GRF_TAU, None),
        )?,
        coefficient,
    })
}

/// `(final_time, dt)` with dt ≤ final_time.
fn check_times(
    cx: &Ctx,
    p: &str,
    t: &Option<Spanned<f64>>,
    dt: &Option<Spanned<f64>>,
    defaults: (f64, f64),
) -> Result<(f64, f64), ConfigError> {
    let final_time = cx.num(
        t,
        defaults.0,
        &format!("{p}.final_time"),
        positive,
        "a positive number",
    )?;
    let dt = cx.num(
        dt,
        defaults.1,
        &format!("{p}.dt"),
        |v| positive(v) && v <= final_time,
        &format!("a positive number ≤ final_time = {final_time}"),
    )?;
    Ok((final_time, dt))
}

fn check_burgers(cx: &Ctx, r: &RawBurgers) -> Result<BurgersPlan, ConfigError> {
    let p = "generate.burgers";
    let (final_time, dt) = check_times(
        cx,
        p,
        &r.final_time,
        &r.dt,
        (defaults::BURGERS_FINAL_TIME, defaults::BURGERS_DT),
    )?;
    Ok(BurgersPlan {
        resolution: resolution(
            cx,
            &r.resolution,
            defaults::BURGERS_RESOLUTION,
            &format!("{p}.resolution"),
            8,
            true,
        )?,
        viscosity: cx.num(
            &r.viscosity,
            defaults::BURGERS_VISCOSITY,
            &format!("{p}.viscosity"),
            positive,
            "a positive number",
        )?,
        final_time,
        dt,
        snapshots: cx.num(
            &r.snapshots,
            0,
            &format!("{p}.snapshots"),
            |v| v <= 100_000,
            "an integer from 0 (only u(T)) to 100000",
        )?,
        initial: check_grf(
            cx,
            r.initial.as_ref(),
            &format!("{p}.initial"),
            defaults::BURGERS_GRF,
        )?,
    })
}

fn check_navier_stokes(cx: &Ctx, r: &RawNavierStokes) -> Result<NavierStokesPlan, ConfigError> {
    let p = "generate.navier_stokes";
    let (final_time, dt) = check_times(
        cx,
        p,
        &r.final_time,
        &r.dt,
        (defaults::NS_FINAL_TIME, defaults::NS_DT),
    )?;
    Ok(NavierStokesPlan {
        resolution: resolution(
            cx,
            &r.resolution,
            defaults::NS_RESOLUTION,
            &format!("{p}.resolution"),
            8,
            true,
        )?,
        viscosity: cx.num(
            &r.viscosity,
            defaults::NS_VISCOSITY,
            &format!("{p}.viscosity"),
            positive,
            "a positive number",
        )?,
        final_time,
        dt,
        snapshots: cx.num(
            &r.snapshots,
            defaults::NS_SNAPSHOTS,
            &format!("{p}.snapshots"),
            |v| (1..=100_000).contains(&v),
            "an integer from 1 to 100000",
        )?,
        forcing: cx.num(
            &r.forcing,
            defaults::NS_FORCING,
            &format!("{p}.forcing"),
            f64::is_finite,
            "a finite number (0 for no forcing)",
        )?,
        initial: check_grf(
            cx,
            r.initial.as_ref(),
            &format!("{p}.initial"),
            defaults::NS_GRF,
        )?,
    })
}

fn check_solver_bench(cx: &Ctx, r: &RawSolverBench) -> Result<SolverBenchPlan, ConfigError> {
    let p = "solver_bench";
    let methods = r.methods.get_ref();
    if methods.is_empty() {
        return cx.err(
            r.methods.span().start,
            "solver_bench.methods",
            "expected at least one [[solver_bench.methods]] entry",
        );
    }
    let table_at = |i: usize| {
        cx.text
            .match_indices("[[solver_bench.methods]]")
            .nth(i)
            .map_or(r.methods.span().start, |(at, _)| at)
    };
    let methods = methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(BenchMethodPlan {
                method: check_method(
                    cx,
                    MethodFields {
                        prefix: format!("{p}.methods[{i}]"),
                        at: table_at(i),
                        method: m.method,
                        preconditioner: &m.preconditioner,
                        omega: &m.omega,
                        restart: &m.restart,
                        recycle: &m.recycle,
                        recycle_update: &m.recycle_update,
                        warm_start: m.warm_start,
                        learned_allowed: false,
                    },
                )?,
                ordering: m.ordering,
                fresh: m.fresh.unwrap_or(false),
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok(SolverBenchPlan {
        problem: r.problem,
        grid: cx.num(
            &Some(r.grid.clone()),
            0,
            "solver_bench.grid",
            |v| (4..=4096).contains(&v),
            "an integer from 4 to 4096",
        )?,
        systems: cx.num(
            &r.systems,
            defaults::BENCH_SYSTEMS,
            "solver_bench.systems",
            |v| (1..=100_000).contains(&v),
            "an integer from 1 to 100000",
        )?,
        seed: r.seed.unwrap_or(defaults::SEED),
        tolerance: cx.num(
            &r.tolerance,
            defaults::TOLERANCE,
            "solver_bench.tolerance",
            |v| v > 0.0 && v < 1.0,
            "a number in (0, 1)",
        )?,
        max_iterations: cx.num(
            &r.max_iterations,
            defaults::MAX_ITERATIONS,
            "solver_bench.max_iterations",
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        ordering: r.ordering.unwrap_or(OrderingName::Greedy),
        threads: cx.num(
            &r.threads,
            defaults::BENCH_THREADS,
            "solver_bench.threads",
            |v| (1..=1024).contains(&v),
            "an integer from 1 to 1024",
        )?,
        alpha: cx.num(
            &r.alpha,
            defaults::BENCH_ALPHA,
            "solver_bench.alpha",
            |v| v > 1.0 && v.is_finite(),
            "a number > 1",
        )?,
        tau: cx.num(
            &r.tau,
            defaults::BENCH_TAU,
            "solver_bench.tau",
            positive,
            "a positive number",
        )?,
        wavenumber: cx.num(
            &r.wavenumber,
            defaults::HELMHOLTZ_WAVENUMBER,
            "solver_bench.wavenumber",
            |v| v >= 0.0 && v.is_finite(),
            "a number ≥ 0",
        )?,
        output_dir: r.output_dir.as_ref().map_or_else(
            || PathBuf::from(defaults::BENCH_OUTPUT_DIR),
            |d| cx.path(d.get_ref()),
        ),
        export_dir: r.export_dir.as_ref().map_or_else(
            || PathBuf::from(defaults::BENCH_EXPORT_DIR),
            |d| cx.path(d.get_ref()),
        ),
        methods,
    })
}

fn check_coefficient(
    cx: &Ctx,
    c: &RawCoefficient,
    prefix: &str,
) -> Result<CoefficientPlan, ConfigError> {
    let kind = c.kind.unwrap_or(CoefficientKind::Threshold);
    let coefficient = CoefficientPlan {
        kind,
        alpha: cx.num(
            &c.alpha,
            defaults::GRF_ALPHA,
            &format!("{prefix}.alpha"),
            |v| v > 1.0 && v.is_finite(),
            "a number > 1 (the field must be continuous in 2-D)",
        )?,
        tau: cx.num(
            &c.tau,
            defaults::GRF_TAU,
            &format!("{prefix}.tau"),
            positive,
            "a positive number",
        )?,
        sigma: match &c.sigma {
            None => None,
            Some(_) => Some(cx.num(
                &c.sigma,
                1.0,
                &format!("{prefix}.sigma"),
                positive,
                "a positive number",
            )?),
        },
        high: cx.num(
            &c.high,
            defaults::THRESHOLD_HIGH,
            &format!("{prefix}.high"),
            positive,
            "a positive number",
        )?,
        low: cx.num(
            &c.low,
            defaults::THRESHOLD_LOW,
            &format!("{prefix}.low"),
            positive,
            "a positive number",
        )?,
    };
    if kind == CoefficientKind::Lognormal {
        for (v, k) in [(&c.high, "high"), (&c.low, "low")] {
            if let Some(v) = v {
                return cx.err(
                    v.span().start,
                    &format!("{prefix}.{k}"),
                    "only applies to kind = \"threshold\"; a log-normal coefficient is exp(field)",
                );
            }
        }
    }
    Ok(coefficient)
}

fn check_darcy(cx: &Ctx, d: &RawDarcy) -> Result<DarcyPlan, ConfigError> {
    let coefficient = check_coefficient(
        cx,
        d.coefficient.as_ref().unwrap_or(&RawCoefficient::default()),
        "generate.darcy.coefficient",
    )?;
    let form = d.form.unwrap_or(DarcyFormName::Flux);
    if form == DarcyFormName::Paper && d.centring == Some(Centring::Cell) {
        return cx.err(
            cx.text.find("centring").unwrap_or(0),
            "generate.darcy.centring",
            "form = \"paper\" (A = L·diag(K)) is defined on a vertex grid; use centring = \"vertex\"",
        );
    }
    Ok(DarcyPlan {
        resolution: cx.num(
            &d.resolution,
            defaults::DARCY_RESOLUTION,
            "generate.darcy.resolution",
            |v| (3..=8192).contains(&v),
            "an integer from 3 to 8192",
        )?,
        centring: d.centring.unwrap_or(Centring::Vertex),
        form,
        forcing: cx.num(
            &d.forcing,
            defaults::DARCY_FORCING,
            "generate.darcy.forcing",
            f64::is_finite,
            "a finite number",
        )?,
        coefficient,
    })
}

fn check_relax(cx: &Ctx, r: &RawRelax, text: &str) -> Result<RelaxPlan, ConfigError> {
    let d = defaults::RELAX_MAX_ITERATIONS;
    let empty_arms = RawArms::default();
    let a = r.arms.as_ref().unwrap_or(&empty_arms);
    let arms = ArmsPlan {
        min: cx.num(
            &a.min,
            defaults::ARMS_MIN,
            "relax.arms.min",
            |v| v > 0.0 && v < 2.0,
            "a number in (0, 2)",
        )?,
        max: cx.num(
            &a.max,
            defaults::ARMS_MAX,
            "relax.arms.max",
            |v| v > 0.0 && v < 2.0,
            "a number in (0, 2)",
        )?,
        count: cx.num(
            &a.count,
            defaults::ARMS_COUNT,
            "relax.arms.count",
            |v| (1..=200).contains(&v),
            "an integer from 1 to 200",
        )?,
    };
    if arms.max < arms.min {
        let at = a.max.as_ref().map_or(0, |v| v.span().start);
        return cx.err(
            at,
            "relax.arms.max",
            format!(
                "expected a value ≥ relax.arms.min = {}, got {}",
                arms.min, arms.max
            ),
        );
    }
    let learners = r.learners.clone().unwrap_or_else(|| {
        vec![
            LearnerName::Tsallis,
            LearnerName::Binned,
            LearnerName::Chebyshev,
        ]
    });
    let (shifted_laplacian, heat) = match r.sequence {
        RelaxSequenceKind::ShiftedLaplacian => {
            let empty = RawShiftedLaplacian::default();
            let s = r.shifted_laplacian.as_ref().unwrap_or(&empty);
            let plan = ShiftedLaplacianPlan {
                grid: cx.num(
                    &s.grid,
                    defaults::LAPLACIAN_GRID,
                    "relax.shifted_laplacian.grid",
                    |v| (2..=1000).contains(&v),
                    "an integer from 2 to 1000",
                )?,
                instances: cx.num(
                    &s.instances,
                    defaults::LAPLACIAN_INSTANCES,
                    "relax.shifted_laplacian.instances",
                    |v| v >= 4,
                    "an integer ≥ 4",
                )?,
                variance: s.variance.unwrap_or(Variance::High),
            };
            (Some(plan), None)
        }
        RelaxSequenceKind::Heat => {
            let empty = RawHeat::default();
            let h = r.heat.as_ref().unwrap_or(&empty);
            let plan = HeatPlan {
                grid: cx.num(
                    &h.grid,
                    defaults::HEAT_GRID,
                    "relax.heat.grid",
                    |v| (2..=1000).contains(&v),
                    "an integer from 2 to 1000",
                )?,
                steps: cx.num(
                    &h.steps,
                    defaults::HEAT_STEPS,
                    "relax.heat.steps",
                    |v| v >= 4,
                    "an integer ≥ 4",
                )?,
            };
            (None, Some(plan))
        }
    };
    // A table for the other sequence would be silently ignored: say so instead.
    let stray = match r.sequence {
        RelaxSequenceKind::ShiftedLaplacian => r.heat.is_some().then_some("heat"),
        RelaxSequenceKind::Heat => r.shifted_laplacian.is_some().then_some("shifted_laplacian"),
    };
    if let Some(name) = stray {
        let at = text.find(&format!("[relax.{name}]")).unwrap_or(0);
        return cx.err(
            at,
            &format!("relax.{name}"),
            "this table does not apply to the chosen `relax.sequence`",
        );
    }
    Ok(RelaxPlan {
        sequence: r.sequence,
        output_dir: cx.path(r.output_dir.get_ref()),
        seed: r.seed.unwrap_or(defaults::RELAX_SEED),
        repeats: cx.num(
            &r.repeats,
            defaults::RELAX_REPEATS,
            "relax.repeats",
            |v| (1..=1000).contains(&v),
            "an integer from 1 to 1000",
        )?,
        tolerance: cx.num(
            &r.tolerance,
            defaults::RELAX_TOLERANCE,
            "relax.tolerance",
            |v| v > 0.0 && v < 1.0,
            "a number in (0, 1)",
        )?,
        max_iterations: cx.num(
            &r.max_iterations,
            d,
            "relax.max_iterations",
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        learners,
        loss_scale: cx.num(
            &r.loss_scale,
            defaults::RELAX_LOSS_SCALE,
            "relax.loss_scale",
            |v| v >= 1.0 && v.is_finite(),
            "a number ≥ 1",
        )?,
        learning_rate: cx.num(
            &r.learning_rate,
            defaults::RELAX_LEARNING_RATE,
            "relax.learning_rate",
            positive,
            "a positive number",
        )?,
        gamma0: cx.num(
            &r.gamma0,
            defaults::RELAX_GAMMA0,
            "relax.gamma0",
            positive,
            "a positive number",
        )?,
        bins: cx.num(
            &r.bins,
            defaults::RELAX_BINS,
            "relax.bins",
            |v| (1..=100).contains(&v),
            "an integer from 1 to 100",
        )?,
        degree: cx.num(
            &r.degree,
            defaults::RELAX_DEGREE,
            "relax.degree",
            |v| v <= 7,
            "an integer from 0 to 7",
        )?,
        format: r.format.unwrap_or(ImageFormat::Png),
        arms,
        shifted_laplacian,
        heat,
    })
}

fn check_gp(cx: &Ctx, r: &RawGp) -> Result<GpPlan, ConfigError> {
    let expr = crate::expr::Expr::parse(r.solution.get_ref()).map_err(|e| {
        // Point at the character inside the string (the span starts at the opening quote).
        let text = r.solution.get_ref();
        let byte = text
            .char_indices()
            .nth(e.column - 1)
            .map_or(text.len(), |(b, _)| b);
        let at = r.solution.span().start + 1 + byte;
        let at = if cx.text.is_char_boundary(at) {
            at
        } else {
            r.solution.span().start
        };
        ConfigError::at(
            cx.path,
            cx.text,
            at,
            Some("gp.solution".into()),
            format!("{}: {}", e, r.solution.get_ref()),
        )
    })?;
    let dim = cx.num(
        &r.dim,
        expr.dim(),
        "gp.dim",
        |v| (1..=2).contains(&v),
        "1 or 2",
    )?;
    if dim < expr.dim() {
        let at = r.dim.as_ref().map_or(0, |v| v.span().start);
        return cx.err(
            at,
            "gp.dim",
            "the solution uses y, so the problem is 2-D: expected 2, got 1",
        );
    }
    let domain = match &r.domain {
        None => [0.0, 1.0],
        Some(d) => {
            let [a, b] = *d.get_ref();
            if !(a.is_finite() && b.is_finite() && a < b) {
                return cx.err(
                    d.span().start,
                    "gp.domain",
                    format!("expected [a, b] with finite a < b, got [{a}, {b}]"),
                );
            }
            [a, b]
        }
    };
    let pde = *r.pde.get_ref();
    let velocity = match (pde, &r.velocity) {
        (GpPde::Advection, Some(v)) if v.get_ref().is_finite() => Some(*v.get_ref()),
        (GpPde::Advection, Some(v)) => {
            return cx.err(v.span().start, "gp.velocity", "expected a finite number")
        }
        (GpPde::Advection, None) => {
            return cx.err(
                r.pde.span().start,
                "gp.velocity",
                "missing key: advection needs `velocity`, the β of u_t + β u_x = f",
            )
        }
        (_, Some(v)) => {
            return cx.err(
                v.span().start,
                "gp.velocity",
                "only the advection equation takes a velocity",
            )
        }
        (_, None) => None,
    };
    if pde == GpPde::Advection && dim != 2 {
        return cx.err(
            r.pde.span().start,
            "gp.pde",
            "advection is solved on a space-time grid: the solution must use x (space) and y (time)",
        );
    }
    if pde == GpPde::Advection && r.baseline == Some(true) {
        let at = cx.text.find("baseline").unwrap_or(0);
        return cx.err(
            at,
            "gp.baseline",
            "the finite-difference baseline covers Poisson and Allen–Cahn, not advection",
        );
    }
    let (points_default, test_default) = if dim == 1 {
        (defaults::GP_POINTS_1D, defaults::GP_TEST_POINTS_1D)
    } else {
        (defaults::GP_POINTS_2D, defaults::GP_TEST_POINTS_2D)
    };
    let steps = cx.num(
        &r.steps,
        defaults::GP_STEPS,
        "gp.steps",
        |v| v >= 1,
        "an integer ≥ 1",
    )?;
    let learning_rate = cx.num(
        &r.learning_rate,
        defaults::GP_LEARNING_RATE,
        "gp.learning_rate",
        positive,
        "a positive number",
    )?;
    Ok(GpPlan {
        pde,
        velocity,
        solution: r.solution.get_ref().clone(),
        dim,
        domain,
        points: cx.num(
            &r.points,
            points_default,
            "gp.points",
            |v| (4..=if dim == 1 { 4000 } else { 400 }).contains(&v),
            if dim == 1 {
                "an integer from 4 to 4000"
            } else {
                "an integer from 4 to 400 (per axis)"
            },
        )?,
        test_points: cx.num(
            &r.test_points,
            test_default,
            "gp.test_points",
            |v| (2..=if dim == 1 { 100_000 } else { 1000 }).contains(&v),
            if dim == 1 {
                "an integer from 2 to 100000"
            } else {
                "an integer from 2 to 1000 (per axis)"
            },
        )?,
        envelope: r.envelope.unwrap_or(GpEnvelope::Gaussian),
        components: cx.num(
            &r.components,
            defaults::GP_COMPONENTS,
            "gp.components",
            |v| (1..=200).contains(&v),
            "an integer from 1 to 200",
        )?,
        max_freq: cx.num(
            &r.max_freq,
            defaults::GP_MAX_FREQ,
            "gp.max_freq",
            |v| v >= 0.0 && v.is_finite(),
            "a number ≥ 0 (cycles per unit length)",
        )?,
        length_scale: cx.num(
            &r.length_scale,
            defaults::GP_LENGTH_SCALE,
            "gp.length_scale",
            positive,
            "a positive number",
        )?,
        jitter: cx.num(
            &r.jitter,
            defaults::GP_JITTER,
            "gp.jitter",
            |v| v > 0.0 && v < 1.0,
            "a number in (0, 1)",
        )?,
        boundary_weight: cx.num(
            &r.boundary_weight,
            defaults::GP_BOUNDARY_WEIGHT,
            "gp.boundary_weight",
            positive,
            "a positive number",
        )?,
        steps,
        learning_rate,
        final_learning_rate: cx.num(
            &r.final_learning_rate,
            defaults::GP_FINAL_LEARNING_RATE.min(learning_rate),
            "gp.final_learning_rate",
            |v| v > 0.0 && v <= learning_rate,
            &format!("a positive number ≤ gp.learning_rate = {learning_rate}"),
        )?,
        decay_fraction: cx.num(
            &r.decay_fraction,
            defaults::GP_DECAY_FRACTION,
            "gp.decay_fraction",
            |v| (0.0..=1.0).contains(&v),
            "a number in [0, 1]",
        )?,
        polish: r.polish.unwrap_or(true),
        polish_every: cx.num(
            &r.polish_every,
            if dim == 1 {
                defaults::GP_POLISH_EVERY_1D
            } else {
                defaults::GP_POLISH_EVERY_2D
            },
            "gp.polish_every",
            |_| true,
            "an integer ≥ 0",
        )?,
        checkpoints: cx.num(
            &r.checkpoints,
            defaults::GP_CHECKPOINTS.min(steps),
            "gp.checkpoints",
            |v| (1..=steps.max(1)).contains(&v),
            &format!("an integer from 1 to gp.steps = {steps}"),
        )?,
        baseline: r.baseline.unwrap_or(dim == 1) && pde != GpPde::Advection,
        output_dir: cx.path(r.output_dir.get_ref()),
        format: r.format.unwrap_or(ImageFormat::Png),
    })
}

fn check_mlvms(cx: &Ctx, r: &RawMlvms) -> Result<MlvmsPlan, ConfigError> {
    let dim = *r.dim.get_ref();
    if !(2..=3).contains(&dim) {
        return cx.err(
            r.dim.span().start,
            "mlvms.dim",
            format!("expected 2 or 3, got {dim}"),
        );
    }
    let coarse = cx.num(
        &r.coarse,
        16,
        "mlvms.coarse",
        |v| (4..=4096).contains(&v),
        "an integer from 4 to 4096",
    )?;
    let centre = r.centre.get_ref().clone();
    if centre.len() != dim || centre.iter().any(|c| !(*c > 0.0 && *c < 1.0)) {
        return cx.err(
            r.centre.span().start,
            "mlvms.centre",
            format!("expected {dim} coordinates inside (0, 1), got {centre:?}"),
        );
    }
    let radius = *r.radius.get_ref();
    if !(radius > 0.0 && radius < 0.5) {
        return cx.err(
            r.radius.span().start,
            "mlvms.radius",
            format!("expected a number in (0, 0.5), got {radius}"),
        );
    }
    check_mlvms_levels(cx, &r.levels, "mlvms")?;
    let max_uniform = if dim == 2 { 4096 } else { 256 };
    let uniform = r
        .uniform
        .as_ref()
        .map_or_else(Vec::new, |u| u.get_ref().clone());
    if let Some(bad) = uniform.iter().find(|&&n| !(4..=max_uniform).contains(&n)) {
        let at = r.uniform.as_ref().map_or(0, |u| u.span().start);
        return cx.err(
            at,
            "mlvms.uniform",
            format!("expected cells per axis from 4 to {max_uniform}, got {bad}"),
        );
    }
    let chidenn = match &r.chidenn {
        None => None,
        Some(c) => Some(check_mlvms_chidenn(cx, c, dim, coarse)?),
    };
    Ok(MlvmsPlan {
        dim,
        coarse,
        chidenn,
        conductivity: cx.num(
            &r.conductivity,
            1.0,
            "mlvms.conductivity",
            positive,
            "a positive number",
        )?,
        centre,
        radius,
        amplitude: cx.num(
            &r.amplitude,
            1.0,
            "mlvms.amplitude",
            |v: f64| v.is_finite() && v != 0.0,
            "a finite nonzero number",
        )?,
        levels: r.levels.get_ref().clone(),
        uniform,
        output_dir: cx.path(r.output_dir.get_ref()),
        format: r.format.unwrap_or(ImageFormat::Png),
    })
}

fn check_mlvms_chidenn(
    cx: &Ctx,
    c: &RawMlvmsChidenn,
    dim: usize,
    coarse: usize,
) -> Result<MlvmsChidennPlan, ConfigError> {
    let defaults = ChidennParams::default();
    let params = ChidennParams {
        patch_layers: cx.num(
            &c.patch_layers,
            defaults.patch_layers,
            "mlvms.chidenn.patch_layers",
            |v| (1..=4).contains(&v),
            "an integer from 1 to 4",
        )?,
        degree: cx.num(
            &c.degree,
            defaults.degree,
            "mlvms.chidenn.degree",
            |v| (1..=4).contains(&v),
            "an integer from 1 to 4",
        )?,
        dilation: cx.num(
            &c.dilation,
            defaults.dilation,
            "mlvms.chidenn.dilation",
            positive,
            "a positive number of element sizes",
        )?,
    };
    let valid = if dim == 2 {
        params.validate::<2>()
    } else {
        params.validate::<3>()
    };
    if let Err(message) = valid {
        let at = c
            .degree
            .as_ref()
            .or(c.patch_layers.as_ref())
            .map_or(0, |v| v.span().start);
        return cx.err(at, "mlvms.chidenn.degree", message);
    }
    let sizes = c
        .coarse
        .as_ref()
        .map_or_else(|| vec![coarse], |v| v.get_ref().clone());
    if sizes.is_empty() || sizes.iter().any(|n| !(4..=4096).contains(n)) {
        let at = c.coarse.as_ref().map_or(0, |v| v.span().start);
        return cx.err(
            at,
            "mlvms.chidenn.coarse",
            format!("expected a non-empty list of coarse sizes from 4 to 4096, got {sizes:?}"),
        );
    }
    Ok(MlvmsChidennPlan {
        coarse: sizes,
        params,
    })
}

fn check_mlvms_levels(
    cx: &Ctx,
    levels: &Spanned<Vec<MlvmsLevelPlan>>,
    section: &str,
) -> Result<(), ConfigError> {
    for (i, l) in levels.get_ref().iter().enumerate() {
        if !(l.half_width > 0.0 && l.half_width < 0.5 && (1..=16).contains(&l.refine)) {
            return cx.err(
                levels.span().start,
                &format!("{section}.levels[{i}]"),
                format!(
                    "expected half_width in (0, 0.5) and refine from 1 to 16, got half_width = {}, refine = {}",
                    l.half_width, l.refine
                ),
            );
        }
    }
    Ok(())
}

/// Width, layers, modes and padding shared by the FNO-like models.
fn check_fno_like(
    cx: &Ctx,
    at: usize,
    key: &str,
    width: usize,
    layers: usize,
    modes: &[usize],
    domain_padding: f64,
) -> Result<(), ConfigError> {
    if width == 0
        || layers == 0
        || modes.is_empty()
        || modes.len() > 3
        || modes.contains(&0)
        || !(0.0..=1.0).contains(&domain_padding)
    {
        return cx.err(
            at,
            key,
            format!(
                "expected width ≥ 1, layers ≥ 1, 1 to 3 positive modes and domain_padding in [0, 1], got width = {width}, layers = {layers}, modes = {modes:?}, domain_padding = {domain_padding}"
            ),
        );
    }
    Ok(())
}

fn check_model(cx: &Ctx, r: &RawTrain) -> Result<ModelPlan, ConfigError> {
    let given: Vec<(usize, ModelPlan)> = [
        r.fno
            .as_ref()
            .map(|v| (v.span().start, ModelPlan::Fno(v.get_ref().clone()))),
        r.tfno
            .as_ref()
            .map(|v| (v.span().start, ModelPlan::Tfno(v.get_ref().clone()))),
        r.ffno
            .as_ref()
            .map(|v| (v.span().start, ModelPlan::Ffno(v.get_ref().clone()))),
        r.deeponet
            .as_ref()
            .map(|v| (v.span().start, ModelPlan::Deeponet(v.get_ref().clone()))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        let at = given.get(1).map_or(r.output_dir.span().start, |g| g.0);
        return cx.err(
            at,
            "train",
            format!(
                "expected exactly one model table ([train.fno], [train.tfno], [train.ffno] or [train.deeponet]), got {}",
                if given.is_empty() { "none".to_string() } else {
                    given.iter().map(|g| format!("[{}]", g.1.key())).collect::<Vec<_>>().join(" and ")
                }
            ),
        );
    }
    let (at, model) = given.into_iter().next().expect("one model");
    let key = model.key();
    match &model {
        ModelPlan::Fno(p) => {
            check_fno_like(cx, at, key, p.width, p.layers, &p.modes, p.domain_padding)?
        }
        ModelPlan::Ffno(p) => {
            check_fno_like(cx, at, key, p.width, p.layers, &p.modes, p.domain_padding)?;
            if p.ff_expansion == 0 {
                return cx.err(at, "train.ffno.ff_expansion", "expected an integer ≥ 1");
            }
        }
        ModelPlan::Tfno(p) => {
            check_fno_like(cx, at, key, p.width, p.layers, &p.modes, p.domain_padding)?;
            let axes = p.modes.len() + 2;
            let ok = match (p.rank, &p.ranks, p.factorization) {
                (Some(f), None, _) => f > 0.0 && f <= 1.0,
                (None, Some(r), FactorizationName::Tucker) => r.len() == axes && !r.contains(&0),
                (None, Some(r), FactorizationName::Cp) => r.len() == 1 && r[0] > 0,
                _ => false,
            };
            if !ok {
                let count = match p.factorization {
                    FactorizationName::Tucker => {
                        format!("{axes} positive integers: one per mode axis, then c_in and c_out")
                    }
                    FactorizationName::Cp => "one positive integer".to_string(),
                };
                let got = match (p.rank, &p.ranks) {
                    (None, None) => "neither".to_string(),
                    (Some(f), None) => format!("rank = {f}"),
                    (None, Some(r)) => format!("ranks = {r:?}"),
                    (Some(f), Some(r)) => format!("both rank = {f} and ranks = {r:?}"),
                };
                return cx.err(
                    at,
                    "train.tfno.rank",
                    format!(
                        "expected either `rank` (a fraction in (0, 1] of the dense spectral weights) or `ranks` ({count}), got {got}"
                    ),
                );
            }
        }
        ModelPlan::Deeponet(p) => {
            if p.sensors.is_empty()
                || p.sensors.len() > 3
                || p.sensors.contains(&0)
                || p.branch.is_empty()
                || p.branch.contains(&0)
                || p.trunk.is_empty()
                || p.trunk.contains(&0)
                || p.basis == 0
            {
                return cx.err(
                    at,
                    key,
                    format!(
                        "expected 1 to 3 positive sensor counts, non-empty lists of positive branch and trunk widths and basis ≥ 1, got sensors = {:?}, branch = {:?}, trunk = {:?}, basis = {}",
                        p.sensors, p.branch, p.trunk, p.basis
                    ),
                );
            }
        }
    }
    Ok(model)
}

fn check_train(cx: &Ctx, r: &RawTrain) -> Result<TrainPlan, ConfigError> {
    let p = "train";
    let model = check_model(cx, r)?;
    let positive_count = |v: &Spanned<usize>, key: &str| -> Result<usize, ConfigError> {
        if *v.get_ref() == 0 {
            return cx.err(v.span().start, key, "expected at least 1");
        }
        Ok(*v.get_ref())
    };
    let learning_rate = cx.num(
        &r.learning_rate,
        1e-3,
        &format!("{p}.learning_rate"),
        |v: f64| v > 0.0 && v < 1.0,
        "a number in (0, 1)",
    )?;
    Ok(TrainPlan {
        data: cx.path(r.data.get_ref()),
        input: r.input.clone().unwrap_or_default(),
        output: r.output.clone().unwrap_or_default(),
        train_samples: positive_count(&r.train_samples, "train.train_samples")?,
        test_samples: positive_count(&r.test_samples, "train.test_samples")?,
        epochs: cx.num(
            &r.epochs,
            500,
            &format!("{p}.epochs"),
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        batch_size: cx.num(
            &r.batch_size,
            20,
            &format!("{p}.batch_size"),
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        learning_rate,
        optimizer: r.optimizer.unwrap_or(OptimizerName::Adam),
        weight_decay: cx.num(
            &r.weight_decay,
            0.0,
            &format!("{p}.weight_decay"),
            |v: f64| (0.0..1.0).contains(&v),
            "a number in [0, 1)",
        )?,
        schedule: r.schedule.unwrap_or(ScheduleName::Step),
        step_size: cx.num(
            &r.step_size,
            100,
            &format!("{p}.step_size"),
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        gamma: cx.num(
            &r.gamma,
            0.5,
            &format!("{p}.gamma"),
            |v: f64| v > 0.0 && v <= 1.0,
            "a number in (0, 1]",
        )?,
        min_learning_rate: cx.num(
            &r.min_learning_rate,
            0.0,
            &format!("{p}.min_learning_rate"),
            |v: f64| (0.0..learning_rate).contains(&v),
            "a number in [0, learning_rate)",
        )?,
        patience: cx.num(
            &r.patience,
            10,
            &format!("{p}.patience"),
            |v| v >= 1,
            "an integer ≥ 1",
        )?,
        factor: cx.num(
            &r.factor,
            0.5,
            &format!("{p}.factor"),
            |v: f64| v > 0.0 && v < 1.0,
            "a number in (0, 1)",
        )?,
        loss: r.loss.unwrap_or(LossName::L2),
        early_stopping: cx.num(
            &r.early_stopping,
            0,
            &format!("{p}.early_stopping"),
            |_| true,
            "an integer",
        )?,
        subsample: cx.num(
            &r.subsample,
            1,
            &format!("{p}.subsample"),
            |v| v >= 1,
            "an integer ≥ 1 (1 keeps the data's grid)",
        )?,
        seed: r.seed.unwrap_or(0),
        model,
        output_dir: cx.path(r.output_dir.get_ref()),
        panels: cx.num(
            &r.panels,
            3,
            &format!("{p}.panels"),
            |v| v <= 16,
            "an integer from 0 to 16",
        )?,
        format: r.format.unwrap_or(ImageFormat::Png),
    })
}

fn check_mlvms_transient(
    cx: &Ctx,
    r: &RawMlvmsTransient,
) -> Result<MlvmsTransientPlan, ConfigError> {
    let s = "mlvms_transient";
    let dim = *r.dim.get_ref();
    if !(2..=3).contains(&dim) {
        return cx.err(
            r.dim.span().start,
            &format!("{s}.dim"),
            format!("expected 2 or 3, got {dim}"),
        );
    }
    check_mlvms_levels(cx, &r.levels, s)?;
    for (key, v) in [("start", &r.start), ("velocity", &r.velocity)] {
        let ok = v.get_ref().len() == dim
            && v.get_ref().iter().all(|c| c.is_finite())
            && (key != "start" || v.get_ref().iter().all(|c| *c > 0.0 && *c < 1.0));
        if !ok {
            return cx.err(
                v.span().start,
                &format!("{s}.{key}"),
                format!(
                    "expected {dim} finite numbers{}, got {:?}",
                    if key == "start" { " inside (0, 1)" } else { "" },
                    v.get_ref()
                ),
            );
        }
    }
    let radius = *r.radius.get_ref();
    if !(radius > 0.0 && radius < 0.5) {
        return cx.err(
            r.radius.span().start,
            &format!("{s}.radius"),
            format!("expected a number in (0, 0.5), got {radius}"),
        );
    }
    let positive_key = |v: &Spanned<f64>, key: &str| -> Result<f64, ConfigError> {
        let x = *v.get_ref();
        if positive(x) {
            Ok(x)
        } else {
            cx.err(
                v.span().start,
                &format!("{s}.{key}"),
                format!("expected a positive number, got {x}"),
            )
        }
    };
    let steps = *r.steps.get_ref();
    if !(1..=1_000_000).contains(&steps) {
        return cx.err(
            r.steps.span().start,
            &format!("{s}.steps"),
            format!("expected an integer from 1 to 1000000, got {steps}"),
        );
    }
    Ok(MlvmsTransientPlan {
        dim,
        coarse: cx.num(
            &r.coarse,
            16,
            &format!("{s}.coarse"),
            |v| (4..=4096).contains(&v),
            "an integer from 4 to 4096",
        )?,
        levels: r.levels.get_ref().clone(),
        conductivity: cx.num(
            &r.conductivity,
            1.0,
            &format!("{s}.conductivity"),
            positive,
            "a positive number",
        )?,
        capacity: cx.num(
            &r.capacity,
            1.0,
            &format!("{s}.capacity"),
            positive,
            "a positive number",
        )?,
        power: positive_key(&r.power, "power")?,
        radius,
        start: r.start.get_ref().clone(),
        velocity: r.velocity.get_ref().clone(),
        dt: positive_key(&r.dt, "dt")?,
        steps,
        theta: cx.num(
            &r.theta,
            1.0,
            &format!("{s}.theta"),
            |v| (0.5..=1.0).contains(&v),
            "a number in [0.5, 1]",
        )?,
        recentre_fraction: cx.num(
            &r.recentre_fraction,
            0.25,
            &format!("{s}.recentre_fraction"),
            |v| v > 0.0 && v <= 1.0,
            "a number in (0, 1]",
        )?,
        output_dir: cx.path(r.output_dir.get_ref()),
        format: r.format.unwrap_or(ImageFormat::Png),
    })
}
