//! TOML configs, validated once into typed plans.
//!
//! Parsing is two steps, as in linfa: serde reads the file into `Raw…` structs that mirror the TOML
//! (unknown keys, wrong types and missing keys fail here, with toml's own location), then
//! [`Plan::check`] turns them into a [`Plan`] whose values are all in range. Every error names the
//! file, the line and column, the key, and what was expected. Code below the plan trusts it.

mod error;
mod raw;

pub use error::ConfigError;

use pdekit_solvers::multiscale::chidenn::ChidennParams;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Defaults of every optional key. `configs/README.md` documents the same values.
pub mod defaults {
    pub const SEED: u64 = 0;
    pub const RESTART: usize = 40;
    pub const GCRODR_RECYCLE: usize = 20;
    pub const RCG_RECYCLE: usize = 10;
    pub const GREEDY_MAX_SAMPLES: u64 = 5000;
    pub const BENCH_SYSTEMS: usize = 20;
    pub const BENCH_THREADS: usize = 1;
    pub const BENCH_ALPHA: f64 = 2.5;
    pub const BENCH_TAU: f64 = 7.0;
    pub const HELMHOLTZ_WAVENUMBER: f64 = 20.0;
    pub const BENCH_OUTPUT_DIR: &str = "bench/results";
    pub const BENCH_EXPORT_DIR: &str = "data/bench";
    pub const CHECKPOINT_EVERY: u64 = 32;
    pub const DARCY_RESOLUTION: usize = 64;
    pub const POISSON_RESOLUTION: usize = 64;
    /// Smoothness of the field whose boundary values are Poisson's Dirichlet data.
    pub const POISSON_BOUNDARY_ALPHA: f64 = 3.0;
    pub const HELMHOLTZ_RESOLUTION: usize = 64;
    pub const HEAT_RESOLUTION: usize = 64;
    pub const HEAT_DT: f64 = 1e-3;
    pub const HEAT_FAMILY_STEPS: usize = 100;
    pub const HEAT_EVERY: usize = 10;
    /// The FNO Burgers benchmark: ν = 0.1, T = 1, u₀ ~ N(0, 625(−Δ + 25 I)^(−2)).
    pub const BURGERS_RESOLUTION: usize = 1024;
    pub const BURGERS_VISCOSITY: f64 = 0.1;
    pub const BURGERS_FINAL_TIME: f64 = 1.0;
    pub const BURGERS_DT: f64 = 1e-4;
    pub const BURGERS_GRF: (f64, f64, Option<f64>) = (2.0, 5.0, Some(25.0));
    /// The FNO Navier–Stokes benchmark: 64², ν = 1e-3, T = 50, a snapshot per time unit, Δt = 1e-4,
    /// ω₀ ~ N(0, 7^{3/2}²(−Δ + 49 I)^(−2.5)), forcing 0.1(sin + cos)(2π(x + y)).
    pub const NS_RESOLUTION: usize = 64;
    pub const NS_VISCOSITY: f64 = 1e-3;
    pub const NS_FINAL_TIME: f64 = 50.0;
    pub const NS_DT: f64 = 1e-4;
    pub const NS_SNAPSHOTS: usize = 50;
    pub const NS_FORCING: f64 = 0.1;
    pub const NS_GRF: (f64, f64, Option<f64>) = (2.5, 7.0, None);
    pub const DARCY_FORCING: f64 = 1.0;
    pub const GRF_ALPHA: f64 = 2.0;
    pub const GRF_TAU: f64 = 3.0;
    pub const THRESHOLD_HIGH: f64 = 12.0;
    pub const THRESHOLD_LOW: f64 = 3.0;
    pub const TOLERANCE: f64 = 1e-8;
    pub const MAX_ITERATIONS: usize = 10_000;
    pub const PLOT_SAMPLES: usize = 4;
    pub const RELAX_SEED: u64 = 0;
    pub const RELAX_REPEATS: u64 = 1;
    pub const RELAX_TOLERANCE: f64 = 1e-8;
    pub const RELAX_MAX_ITERATIONS: usize = 5000;
    pub const RELAX_BINS: usize = 5;
    pub const RELAX_DEGREE: usize = 3;
    pub const RELAX_LOSS_SCALE: f64 = 1000.0;
    pub const RELAX_LEARNING_RATE: f64 = 2.0;
    pub const RELAX_GAMMA0: f64 = 10.0;
    pub const ARMS_MIN: f64 = 1.0;
    pub const ARMS_MAX: f64 = 1.95;
    pub const ARMS_COUNT: usize = 20;
    pub const LAPLACIAN_GRID: usize = 10;
    pub const LAPLACIAN_INSTANCES: usize = 5000;
    pub const HEAT_GRID: usize = 32;
    pub const HEAT_STEPS: usize = 1000;
    /// GP-HM: the paper's settings (Q = 30, frequencies initialised over [0, 20], jitter 1e-6,
    /// boundary weight 200, Adam at 1e-2).
    pub const GP_COMPONENTS: usize = 30;
    pub const GP_MAX_FREQ: f64 = 20.0;
    pub const GP_LENGTH_SCALE: f64 = 1.0;
    pub const GP_JITTER: f64 = 1e-6;
    pub const GP_BOUNDARY_WEIGHT: f64 = 200.0;
    pub const GP_LEARNING_RATE: f64 = 1e-2;
    pub const GP_FINAL_LEARNING_RATE: f64 = 1e-4;
    pub const GP_DECAY_FRACTION: f64 = 0.3;
    pub const GP_STEPS: usize = 20_000;
    pub const GP_POINTS_1D: usize = 200;
    pub const GP_POINTS_2D: usize = 64;
    pub const GP_TEST_POINTS_1D: usize = 1000;
    pub const GP_TEST_POINTS_2D: usize = 200;
    pub const GP_CHECKPOINTS: usize = 50;
    /// Exact grid-value steps between Adam steps; 2-D does not converge without them.
    pub const GP_POLISH_EVERY_1D: usize = 1000;
    pub const GP_POLISH_EVERY_2D: usize = 500;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Generate,
    Train,
    Plot,
    Relax,
    Gp,
    Mlvms,
    MlvmsTransient,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Generate,
        Stage::Train,
        Stage::Plot,
        Stage::Relax,
        Stage::Gp,
        Stage::Mlvms,
        Stage::MlvmsTransient,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Generate => "generate",
            Stage::Train => "train",
            Stage::Plot => "plot",
            Stage::Relax => "relax",
            Stage::Gp => "gp",
            Stage::Mlvms => "mlvms",
            Stage::MlvmsTransient => "mlvms_transient",
        }
    }
}

/// What to do with a sample whose solver hit its iteration cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the run with an error (the partial file stays, so the run can be resumed).
    Fail,
    /// Keep the sample with `converged = 0` in `/stats` and report it at the end.
    Keep,
}

/// Floating-point type of the stored fields. Solves always run in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Centring {
    Vertex,
    Cell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoefficientKind {
    Threshold,
    Lognormal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SolverMethod {
    Cg,
    Gmres,
    Fgmres,
    Bicgstab,
    Gcrodr,
    Rcg,
    Amg,
}

impl SolverMethod {
    pub fn takes_restart(self) -> bool {
        matches!(self, Self::Gmres | Self::Fgmres | Self::Gcrodr)
    }

    pub fn takes_recycle(self) -> bool {
        matches!(self, Self::Gcrodr | Self::Rcg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreconditionerKind {
    None,
    Jacobi,
    Ssor,
    Ilu0,
    Amg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecycleUpdateName {
    Cycle,
    System,
}

/// How the systems of a sequence are ordered before a recycling solver visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderingName {
    Natural,
    Greedy,
    PcaHilbert,
}

impl OrderingName {
    pub fn to_solver(self) -> pdekit_solvers::sequence::Ordering {
        use pdekit_solvers::sequence::Ordering;
        match self {
            Self::Natural => Ordering::Natural,
            Self::Greedy => Ordering::Greedy,
            Self::PcaHilbert => Ordering::PcaHilbert,
        }
    }
}

/// A solver method and its preconditioner, as `[generate.solver]` and each
/// `[[solver_bench.methods]]` entry give them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodPlan {
    pub method: SolverMethod,
    pub preconditioner: PreconditionerKind,
    /// Only with `preconditioner = "ssor"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omega: Option<OmegaPlan>,
    /// GMRES, FGMRES and GCRO-DR: vectors per cycle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<usize>,
    /// GCRO-DR and recycled CG: vectors carried from system to system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recycle: Option<usize>,
    /// GCRO-DR: recompute the recycle space after every cycle or once per system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recycle_update: Option<RecycleUpdateName>,
    /// Start each solve from the previous system's solution.
    pub warm_start: bool,
}

impl MethodPlan {
    /// Whether solves depend on the systems solved before (recycle spaces or warm starts).
    pub fn carries_state(&self) -> bool {
        self.warm_start || self.recycle.is_some_and(|k| k > 0)
    }

    /// The solver layer's description; `omega` stands in for a learned ω.
    pub fn spec(
        &self,
        tolerance: f64,
        max_iterations: usize,
        learned_omega: f64,
    ) -> pdekit_solvers::sequence::SolverSpec {
        use pdekit_solvers::krylov::RecycleUpdate;
        use pdekit_solvers::sequence::{Method, PrecondKind, SolverSpec};
        let restart = self.restart.unwrap_or(defaults::RESTART);
        let method = match self.method {
            SolverMethod::Cg => Method::Cg,
            SolverMethod::Gmres => Method::Gmres { restart },
            SolverMethod::Fgmres => Method::Fgmres { restart },
            SolverMethod::Bicgstab => Method::Bicgstab,
            SolverMethod::Gcrodr => Method::GcroDr {
                restart,
                recycle: self.recycle.unwrap_or(defaults::GCRODR_RECYCLE),
                update: match self.recycle_update {
                    Some(RecycleUpdateName::System) => RecycleUpdate::PerSystem,
                    _ => RecycleUpdate::EveryCycle,
                },
            },
            SolverMethod::Rcg => Method::RecycledCg {
                recycle: self.recycle.unwrap_or(defaults::RCG_RECYCLE),
            },
            SolverMethod::Amg => Method::Amg,
        };
        let precond = match self.preconditioner {
            PreconditionerKind::None => PrecondKind::None,
            PreconditionerKind::Jacobi => PrecondKind::Jacobi,
            PreconditionerKind::Ilu0 => PrecondKind::Ilu0,
            PreconditionerKind::Amg => PrecondKind::Amg,
            PreconditionerKind::Ssor => PrecondKind::Ssor {
                omega: match self.omega {
                    Some(OmegaPlan::Fixed(w)) => w,
                    _ => learned_omega,
                },
            },
        };
        SolverSpec::new(
            method,
            precond,
            pdekit_solvers::SolveParams::new(tolerance, max_iterations),
        )
        .with_warm_start(self.warm_start)
    }
}

/// The SSOR relaxation parameter: fixed, or chosen per sample by a Tsallis-INF learner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OmegaPlan {
    Fixed(f64),
    Learned,
}

impl Serialize for OmegaPlan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OmegaPlan::Fixed(w) => s.serialize_f64(*w),
            OmegaPlan::Learned => s.serialize_str("learned"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

/// The PDE a [`GpPlan`] solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpPde {
    /// `−Δu = f`.
    Poisson,
    /// `Δu + u(u² − 1) = f`.
    AllenCahn,
    /// `u_t + β u_x = f` on a space-time grid: x is the first axis, t the second (2-D only).
    Advection,
}

/// The kernel's spectral shape: Gaussian components (squared-exponential envelope) or Student-t
/// components (Matérn-5/2 envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpEnvelope {
    Gaussian,
    Matern,
}

/// The `[gp]` stage: GP-HM on a manufactured solution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpPlan {
    pub pde: GpPde,
    /// β of the advection equation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub velocity: Option<f64>,
    /// The exact solution as an expression in x (and y); the source and boundary data follow.
    pub solution: String,
    pub dim: usize,
    /// The interval of every axis.
    pub domain: [f64; 2],
    /// Collocation points per axis, both ends included.
    pub points: usize,
    /// Test points per axis for the errors and plots.
    pub test_points: usize,
    pub envelope: GpEnvelope,
    pub components: usize,
    pub max_freq: f64,
    pub length_scale: f64,
    pub jitter: f64,
    pub boundary_weight: f64,
    pub steps: usize,
    pub learning_rate: f64,
    pub final_learning_rate: f64,
    pub decay_fraction: f64,
    pub polish: bool,
    pub polish_every: usize,
    /// Error evaluations on the test grid over the run (the error-against-step curve).
    pub checkpoints: usize,
    /// Also solve the 1-D problem by second-order finite differences on the same points.
    pub baseline: bool,
    pub output_dir: PathBuf,
    pub format: ImageFormat,
}

/// One refined box of an `[mlvms]` hierarchy, centred on the source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlvmsLevelPlan {
    /// Half the box width (snapped outwards to the level above's nodes).
    pub half_width: f64,
    /// Cells of this level per cell of the level above, per axis.
    pub refine: usize,
}

/// The `[mlvms]` stage: steady heat conduction with a localized source on the unit square or cube,
/// multilevel against uniform Q1 meshes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlvmsPlan {
    pub dim: usize,
    /// Coarse (level-0) cells per axis.
    pub coarse: usize,
    pub conductivity: f64,
    /// The manufactured solution `u* = amplitude·exp(−|x − centre|²/radius²)`; `Q = −k Δu*`.
    pub centre: Vec<f64>,
    pub radius: f64,
    pub amplitude: f64,
    pub levels: Vec<MlvmsLevelPlan>,
    /// Uniform meshes (cells per axis) solved for comparison.
    pub uniform: Vec<usize>,
    /// Also solve with the C-HiDeNN basis on every level.
    pub chidenn: Option<MlvmsChidennPlan>,
    pub output_dir: PathBuf,
    pub format: ImageFormat,
}

/// The `[train]` stage: a neural operator trained on a dataset, with checkpoints, a report and
/// figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainPlan {
    pub data: PathBuf,
    /// Field names in the dataset (e.g. `inputs/coefficient`).
    pub input: String,
    pub output: String,
    pub train_samples: usize,
    pub test_samples: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub optimizer: OptimizerName,
    pub weight_decay: f64,
    pub schedule: ScheduleName,
    pub step_size: usize,
    pub gamma: f64,
    pub min_learning_rate: f64,
    pub patience: usize,
    pub factor: f64,
    pub loss: LossName,
    /// Epochs without improvement before stopping; 0: never.
    pub early_stopping: usize,
    /// Train and test on every `subsample`-th grid point of each axis (1: the data's grid), as
    /// the FNO paper trains at 85² on its 421² solutions.
    pub subsample: usize,
    pub seed: u64,
    pub model: ModelPlan,
    pub output_dir: PathBuf,
    /// Test samples drawn as prediction panels.
    pub panels: usize,
    pub format: ImageFormat,
}

/// The model a `[train]` stage trains: exactly one of `[train.fno]`, `[train.tfno]`,
/// `[train.ffno]` and `[train.deeponet]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelPlan {
    Fno(FnoPlan),
    Tfno(TfnoPlan),
    Ffno(FfnoPlan),
    Deeponet(DeepOnetPlan),
}

impl ModelPlan {
    /// Grid axes the model expects.
    pub fn dims(&self) -> usize {
        match self {
            ModelPlan::Fno(p) => p.modes.len(),
            ModelPlan::Tfno(p) => p.modes.len(),
            ModelPlan::Ffno(p) => p.modes.len(),
            ModelPlan::Deeponet(p) => p.sensors.len(),
        }
    }

    /// The config key of the model's table, e.g. `train.fno`.
    pub fn key(&self) -> &'static str {
        match self {
            ModelPlan::Fno(_) => "train.fno",
            ModelPlan::Tfno(_) => "train.tfno",
            ModelPlan::Ffno(_) => "train.ffno",
            ModelPlan::Deeponet(_) => "train.deeponet",
        }
    }
}

/// `[train.tfno]`: an FNO whose spectral weights are Tucker or CP factorised.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TfnoPlan {
    pub width: usize,
    pub modes: Vec<usize>,
    pub layers: usize,
    #[serde(default)]
    pub domain_padding: f64,
    /// Grid coordinates appended to the input: "linear" (i/n, neuraloperator's) or "periodic"
    /// (sin and cos of 2πi/n; for periodic problems, where it keeps zero-shot super-resolution).
    #[serde(default)]
    pub embedding: EmbeddingName,
    /// Where the padding goes: "one-sided" (after the last point; the FNO paper's code) or
    /// "symmetric" (both ends; neuraloperator 2.x).
    #[serde(default)]
    pub domain_padding_mode: PaddingModeName,
    pub factorization: FactorizationName,
    /// Parameters as a fraction of the dense spectral weight's (give this or `ranks`).
    pub rank: Option<f64>,
    /// Explicit ranks: Tucker one per weight axis (modes…, c_in, c_out), CP one.
    pub ranks: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaddingModeName {
    #[default]
    OneSided,
    Symmetric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingName {
    #[default]
    Linear,
    Periodic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorizationName {
    Tucker,
    Cp,
}

/// `[train.ffno]`: the factorised FNO (per-axis spectral convolutions, residual blocks).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FfnoPlan {
    pub width: usize,
    pub modes: Vec<usize>,
    pub layers: usize,
    /// Hidden width of each block's feed-forward part, in multiples of `width`.
    #[serde(default = "default_ff_expansion")]
    pub ff_expansion: usize,
    /// One set of spectral weights for all blocks.
    #[serde(default)]
    pub share_weights: bool,
    #[serde(default)]
    pub domain_padding: f64,
    /// Grid coordinates appended to the input: "linear" (i/n, neuraloperator's) or "periodic"
    /// (sin and cos of 2πi/n; for periodic problems, where it keeps zero-shot super-resolution).
    #[serde(default)]
    pub embedding: EmbeddingName,
    /// Where the padding goes: "one-sided" (after the last point; the FNO paper's code) or
    /// "symmetric" (both ends; neuraloperator 2.x).
    #[serde(default)]
    pub domain_padding_mode: PaddingModeName,
}

fn default_ff_expansion() -> usize {
    4
}

/// `[train.deeponet]`: branch MLP on sensor values, trunk MLP on coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepOnetPlan {
    /// Sensor points per grid axis (the input is interpolated onto them when its grid differs).
    pub sensors: Vec<usize>,
    /// Hidden widths of the branch and trunk MLPs.
    pub branch: Vec<usize>,
    pub trunk: Vec<usize>,
    /// Basis functions per output channel.
    pub basis: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FnoPlan {
    pub width: usize,
    /// Kept modes per axis (±m on all axes but the last); its length must match the data.
    pub modes: Vec<usize>,
    pub layers: usize,
    /// Zero padding around the blocks, a fraction of each grid axis (0: none).
    #[serde(default)]
    pub domain_padding: f64,
    /// Grid coordinates appended to the input: "linear" (i/n, neuraloperator's) or "periodic"
    /// (sin and cos of 2πi/n; for periodic problems, where it keeps zero-shot super-resolution).
    #[serde(default)]
    pub embedding: EmbeddingName,
    /// Where the padding goes: "one-sided" (after the last point; the FNO paper's code) or
    /// "symmetric" (both ends; neuraloperator 2.x).
    #[serde(default)]
    pub domain_padding_mode: PaddingModeName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Adam,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleName {
    Constant,
    Step,
    Cosine,
    Plateau,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossName {
    L2,
    H1,
}

/// `[mlvms.chidenn]`: multilevel runs with the C-HiDeNN basis on every level, the same level
/// boxes, one run per coarse size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlvmsChidennPlan {
    pub coarse: Vec<usize>,
    #[serde(serialize_with = "chidenn_params")]
    pub params: ChidennParams,
}

fn chidenn_params<S: serde::Serializer>(p: &ChidennParams, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("ChidennParams", 3)?;
    st.serialize_field("patch_layers", &p.patch_layers)?;
    st.serialize_field("degree", &p.degree)?;
    st.serialize_field("dilation", &p.dilation)?;
    st.end()
}

/// The `[mlvms_transient]` stage: a Gaussian beam moving on a straight line over the unit square
/// or cube, `ρc u_t − ∇·(k∇u) = Q`, `u = 0` on the boundary and at t = 0, with level boxes that
/// follow the beam.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlvmsTransientPlan {
    pub dim: usize,
    pub coarse: usize,
    pub levels: Vec<MlvmsLevelPlan>,
    pub conductivity: f64,
    pub capacity: f64,
    pub power: f64,
    pub radius: f64,
    pub start: Vec<f64>,
    pub velocity: Vec<f64>,
    pub dt: f64,
    pub steps: usize,
    /// 1: implicit Euler; 0.5: Crank–Nicolson.
    pub theta: f64,
    /// Re-centre when the beam is this fraction of the innermost half width from its centre.
    pub recentre_fraction: f64,
    pub output_dir: PathBuf,
    pub format: ImageFormat,
}

/// A validated config: everything a run needs, with defaults filled in and paths resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stages: Vec<Stage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate: Option<GeneratePlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relax: Option<RelaxPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver_bench: Option<SolverBenchPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gp: Option<GpPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlvms: Option<MlvmsPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlvms_transient: Option<MlvmsTransientPlan>,
    /// The config file and its text, stored in every dataset it produces.
    #[serde(skip)]
    pub source_path: PathBuf,
    #[serde(skip)]
    pub source_text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratePlan {
    /// Name of the problem family; always `family.name()`, kept so the plan prints as a config.
    pub problem: String,
    pub output: PathBuf,
    pub samples: u64,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub on_failure: OnFailure,
    pub precision: Precision,
    /// The linear solver; `None` for the spectral families, which solve no systems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverPlan>,
    #[serde(flatten)]
    pub family: ProblemPlan,
}

/// The problem family and its parameters, printed as the `[generate.<family>]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemPlan {
    Darcy(DarcyPlan),
    Poisson(PoissonPlan),
    Helmholtz(HelmholtzPlan),
    Heat(HeatFamilyPlan),
    Burgers(BurgersPlan),
    NavierStokes(NavierStokesPlan),
    Mlvms(BeamPlan),
}

impl ProblemPlan {
    pub const NAMES: [&'static str; 7] = [
        "darcy",
        "poisson",
        "helmholtz",
        "heat",
        "burgers",
        "navier_stokes",
        "mlvms",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            ProblemPlan::Darcy(_) => "darcy",
            ProblemPlan::Poisson(_) => "poisson",
            ProblemPlan::Helmholtz(_) => "helmholtz",
            ProblemPlan::Heat(_) => "heat",
            ProblemPlan::Burgers(_) => "burgers",
            ProblemPlan::NavierStokes(_) => "navier_stokes",
            ProblemPlan::Mlvms(_) => "mlvms",
        }
    }

    /// True for the families that solve linear systems (and so take a `[generate.solver]`).
    pub fn solves_systems(name: &str) -> bool {
        !matches!(name, "burgers" | "navier_stokes")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DarcyPlan {
    pub resolution: usize,
    pub centring: Centring,
    pub forcing: f64,
    pub form: DarcyFormName,
    pub coefficient: CoefficientPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DarcyFormName {
    /// −∇·(a∇u) = f, flux form (SPD).
    Flux,
    /// The SKR paper's A = L·diag(K) (non-symmetric).
    Paper,
}

/// A Gaussian random field `N(0, σ²(−Δ + τ²)^(−α))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GrfPlan {
    pub alpha: f64,
    pub tau: f64,
    /// `None`: the FNO convention τ^(α − d/2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoissonPlan {
    pub dim: usize,
    pub resolution: usize,
    /// `u = 0` on the boundary instead of random data.
    pub homogeneous: bool,
    pub source: GrfPlan,
    /// The field whose boundary values are the Dirichlet data.
    pub boundary: GrfPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelmholtzBoundaryName {
    Dirichlet,
    Absorbing,
}

/// `[generate.mlvms]`: steady heat from a Gaussian beam at a random centre and power, solved by
/// ML-VMS with boxes around each beam; source and temperature sampled on a vertex grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeamPlan {
    pub resolution: usize,
    pub coarse: usize,
    pub levels: Vec<MlvmsLevelPlan>,
    pub conductivity: f64,
    pub radius: f64,
    /// P uniform in `[min, max]` per sample.
    pub power: [f64; 2],
    /// Beam centres uniform in `[margin, 1 − margin]²`.
    pub margin: f64,
    pub basis: BasisName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BasisName {
    Linear,
    /// C-HiDeNN with its default parameters (s = 2, p = 2, a = 10) on every level.
    Chidenn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelmholtzPlan {
    pub resolution: usize,
    /// k₀ uniform in `[min, max]` per sample.
    pub wavenumber: [f64; 2],
    /// `k = k₀(1 + variation·tanh(field))`; 0 for a constant k.
    pub variation: f64,
    pub boundary: HelmholtzBoundaryName,
    pub field: GrfPlan,
    pub source: GrfPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSchemeName {
    ImplicitEuler,
    CrankNicolson,
}

/// κ(t): a number, or `"switching"` for max(0.1 sin 2πt, −10 sin 2πt).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KappaPlan {
    Constant(f64),
    Named(KappaName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KappaName {
    Switching,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatFamilyPlan {
    pub resolution: usize,
    pub scheme: TimeSchemeName,
    pub dt: f64,
    pub steps: usize,
    pub every: usize,
    pub kappa: KappaPlan,
    pub source: f64,
    pub initial: GrfPlan,
    /// A random spatial coefficient a(x); absent for a = 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coefficient: Option<CoefficientPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurgersPlan {
    pub resolution: usize,
    pub viscosity: f64,
    pub final_time: f64,
    pub dt: f64,
    pub snapshots: usize,
    pub initial: GrfPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NavierStokesPlan {
    pub resolution: usize,
    pub viscosity: f64,
    pub final_time: f64,
    pub dt: f64,
    pub snapshots: usize,
    /// Amplitude of the FNO forcing; 0 for none.
    pub forcing: f64,
    pub initial: GrfPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoefficientPlan {
    pub kind: CoefficientKind,
    pub alpha: f64,
    pub tau: f64,
    /// `None`: the FNO convention τ^(α − d/2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    pub high: f64,
    pub low: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverPlan {
    #[serde(flatten)]
    pub method: MethodPlan,
    pub tolerance: f64,
    pub max_iterations: usize,
    /// Only for methods that carry state: the order the samples are solved in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingName>,
    /// Only for methods that carry state: contiguous pieces of the sorted order solved in
    /// parallel, each with its own recycle space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chains: Option<usize>,
}

/// A solver benchmark: one sequence of systems solved by several methods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverBenchPlan {
    pub problem: BenchProblem,
    /// Interior points per side; the systems have grid² unknowns.
    pub grid: usize,
    pub systems: usize,
    pub seed: u64,
    pub tolerance: f64,
    pub max_iterations: usize,
    /// Order for methods that carry state (a method's own `ordering` overrides it).
    pub ordering: OrderingName,
    /// Rayon threads for every method (scipy and pyamg run on one).
    pub threads: usize,
    pub alpha: f64,
    pub tau: f64,
    /// Helmholtz: mean wavenumber k₀.
    pub wavenumber: f64,
    pub output_dir: PathBuf,
    /// Where `--peers` writes the systems as MatrixMarket files.
    pub export_dir: PathBuf,
    pub methods: Vec<BenchMethodPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchMethodPlan {
    #[serde(flatten)]
    pub method: MethodPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingName>,
    /// Forget the recycle space (and previous solution) before every system: the same method
    /// started fresh, to measure what recycling itself buys.
    pub fresh: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchProblem {
    /// −∇·(K∇u) = 1, flux form, K = exp(GRF).
    DarcyFlux,
    /// The SKR paper's A = L·diag(K), K = exp(GRF).
    DarcyPaper,
    /// −Δu = f with f a GRF: one matrix, many right-hand sides.
    Poisson,
    /// −Δu − k(x)²u = 1 with k = k₀(1 + ¼·tanh(GRF)).
    Helmholtz,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotPlan {
    pub input: PathBuf,
    pub output_dir: PathBuf,
    pub samples: usize,
    pub format: ImageFormat,
}

impl GrfPlan {
    pub fn to_solver(self) -> pdekit_solvers::field::GrfParams {
        pdekit_solvers::field::GrfParams::new(self.alpha, self.tau, self.sigma)
    }
}

/// A learned-relaxation experiment: policies choosing ω over a sequence of systems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelaxPlan {
    pub sequence: RelaxSequenceKind,
    pub output_dir: PathBuf,
    pub seed: u64,
    /// Independent runs with seeds `seed, seed + 1, …`; the summary averages over them.
    pub repeats: u64,
    pub tolerance: f64,
    pub max_iterations: usize,
    pub learners: Vec<LearnerName>,
    /// Learners see the loss `min(iterations, loss_scale)/loss_scale`.
    pub loss_scale: f64,
    /// c in the Tsallis-INF learning rate η_t = c/√t.
    pub learning_rate: f64,
    /// γ₀ in the Chebyshev learner's inverse-gap weight γ = γ₀√t.
    pub gamma0: f64,
    pub bins: usize,
    pub degree: usize,
    pub format: ImageFormat,
    pub arms: ArmsPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shifted_laplacian: Option<ShiftedLaplacianPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heat: Option<HeatPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelaxSequenceKind {
    ShiftedLaplacian,
    Heat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LearnerName {
    Tsallis,
    Binned,
    Chebyshev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variance {
    High,
    Low,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmsPlan {
    pub min: f64,
    pub max: f64,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftedLaplacianPlan {
    pub grid: usize,
    pub instances: usize,
    pub variance: Variance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatPlan {
    pub grid: usize,
    pub steps: usize,
}

impl GeneratePlan {
    /// The part of the plan that decides the samples' content. A partial file is resumed only if
    /// its stored key equals this one.
    pub fn content_key(&self) -> String {
        serde_json::json!({
            "samples": self.samples,
            "seed": self.seed,
            "precision": self.precision,
            "solver": self.solver,
            "problem": self.family,
        })
        .to_string()
    }
}

impl Plan {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Validates config text; `path` names it in errors and anchors its relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        raw::check(raw, path, text)
    }

    /// The plan as TOML, defaults filled in: what `run --dry-run` prints.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render plan: {e}\n"))
    }
}
