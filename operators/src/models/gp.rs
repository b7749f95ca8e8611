//! GP operator regression (Batlle, Darcy, Hosseini & Owhadi, "Kernel methods are competitive for
//! operator learning", JCP 2024): Gaussian-process regression from discretised input fields to
//! discretised output fields.
//!
//! - **Features.** An input sample (all its grid values and channels) is one point of R^D,
//!   standardised per value, or its first `input_components` principal-component scores (then
//!   `ard` gives each component its own length-scale).
//! - **Targets.** The output field standardised per value, or its first `output_components`
//!   principal-component coefficients (scaled by one global factor).
//! - **Kernel.** `Γ(U, U') = k(U, U')·I` with a radial `k` ([`RadialKernel`]): one N×N Cholesky
//!   factor serves every output value, and the marginal likelihood of all outputs depends on them
//!   only through the N×N Gram matrix `G = T Tᵀ`, so fitting costs O(N³) whatever the output size.
//! - **Hyper-parameters** (signal variance, length-scale(s), noise, and the rational quadratic's
//!   shape) maximise the log marginal likelihood with its analytic gradient (L-BFGS in log space),
//!   on at most `fit_samples` of the training samples.
//! - **Posterior.** Exact on all N samples (dense f64 linear algebra from `faer`: blocked, parallel
//!   Cholesky), up to [`EXACT_LIMIT`] samples; with `inducing = m`, the deterministic-training-
//!   conditional (DTC/Nyström) approximation on m training samples picked at random, which needs
//!   O(N m²) time and O(N m) memory.
//! - **Prediction** gives the mean and a standard deviation per output value (the latent variance
//!   plus the learned noise, in the data's units).

use crate::gp::lbfgs::{self, LbfgsReport};
use crate::gp::radial::RadialKernel;
use crate::param::{require, InvalidParam};
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::DenseSolveCore;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::prelude::*;
use faer::{Accum, Side};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;
use thiserror::Error;

/// The largest training set the exact posterior takes (its N×N factor is 800 MB at 10⁴).
pub const EXACT_LIMIT: usize = 10_000;

/// `[train.gp]`: GP operator regression. Every key has a default, so an empty table works.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GpSection {
    #[cfg_attr(feature = "serde", serde(default))]
    pub kernel: RadialKernel,
    /// Principal components kept of the input (absent: the standardised raw values).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub input_components: Option<usize>,
    /// One length-scale per input component (needs `input_components`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub ard: bool,
    /// Principal components kept of the output (absent: every output value).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub output_components: Option<usize>,
    /// Add a linear kernel `σₗ² fᵀf'/r` to the radial one (its variance is learned): an operator
    /// close to linear (short-time evolution, a linear PDE's solution map) is then captured
    /// exactly rather than approximated by the radial kernel's smooth bumps.
    #[cfg_attr(feature = "serde", serde(default))]
    pub linear: bool,
    /// Initial noise variance (the nugget), in units of the standardised targets; it is learned.
    #[cfg_attr(feature = "serde", serde(default = "default_noise"))]
    pub noise: f64,
    /// L-BFGS iterations of the hyper-parameter fit (0: keep the initial values).
    #[cfg_attr(feature = "serde", serde(default = "default_iterations"))]
    pub iterations: usize,
    /// The hyper-parameters are fitted on at most this many training samples (drawn at random).
    #[cfg_attr(feature = "serde", serde(default = "default_fit_samples"))]
    pub fit_samples: usize,
    /// Inducing points of a DTC (Nyström) posterior (absent: the exact posterior).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub inducing: Option<usize>,
}

fn default_noise() -> f64 {
    1e-4
}

fn default_iterations() -> usize {
    100
}

fn default_fit_samples() -> usize {
    2000
}

impl Default for GpSection {
    fn default() -> Self {
        Self {
            kernel: RadialKernel::default(),
            input_components: None,
            ard: false,
            output_components: None,
            linear: false,
            noise: default_noise(),
            iterations: default_iterations(),
            fit_samples: default_fit_samples(),
            inducing: None,
        }
    }
}

impl GpSection {
    pub fn validate(&self) -> Result<(), InvalidParam> {
        for (key, v) in [
            ("input_components", self.input_components),
            ("output_components", self.output_components),
            ("inducing", self.inducing),
        ] {
            if let Some(v) = v {
                require(v >= 1, key, "an integer ≥ 1", v)?;
            }
        }
        require(
            !self.ard || self.input_components.is_some(),
            "ard",
            "ard = true only with input_components (one length-scale per component)",
            self.ard,
        )?;
        require(
            self.noise.is_finite() && self.noise > 0.0 && self.noise < 1.0,
            "noise",
            "a variance in (0, 1) (the targets are standardised)",
            self.noise,
        )?;
        require(
            self.fit_samples >= 2,
            "fit_samples",
            "an integer ≥ 2",
            self.fit_samples,
        )?;
        Ok(())
    }
}

/// The fitted hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GpHyper {
    pub signal_variance: f64,
    /// One, or one per input component (ARD).
    pub lengthscales: Vec<f64>,
    pub noise_variance: f64,
    /// The rational quadratic's α (1 and unused for the other kernels).
    pub shape: f64,
    /// The linear kernel's variance (0: no linear part).
    #[cfg_attr(feature = "serde", serde(default))]
    pub linear_variance: f64,
}

impl GpHyper {
    /// `[log σ², log ℓ…, log σₙ², (log α), (log σₗ²)]`.
    fn to_log(&self, kernel: RadialKernel, linear: bool) -> Vec<f64> {
        let mut t = vec![self.signal_variance.ln()];
        t.extend(self.lengthscales.iter().map(|l| l.ln()));
        t.push(self.noise_variance.ln());
        if kernel.has_shape() {
            t.push(self.shape.ln());
        }
        if linear {
            t.push(self.linear_variance.ln());
        }
        t
    }

    fn from_log(t: &[f64], lengthscales: usize, kernel: RadialKernel, linear: bool) -> Self {
        let shape_at = 2 + lengthscales;
        let linear_at = shape_at + usize::from(kernel.has_shape());
        Self {
            signal_variance: t[0].exp(),
            lengthscales: t[1..1 + lengthscales].iter().map(|v| v.exp()).collect(),
            noise_variance: t[1 + lengthscales].exp(),
            shape: if kernel.has_shape() {
                t[shape_at].exp()
            } else {
                1.0
            },
            linear_variance: if linear { t[linear_at].exp() } else { 0.0 },
        }
    }

    /// The prior variance at features `f` (the kernel's diagonal, noise excluded).
    fn prior_variance(&self, f: &[f64]) -> f64 {
        self.signal_variance
            + self.linear_variance * f.iter().map(|v| v * v).sum::<f64>() / f.len().max(1) as f64
    }
}

/// How an input sample becomes a feature vector.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
pub enum InputMap {
    /// `(x − mean)/std` per value.
    Standardize { mean: Vec<f64>, std: Vec<f64> },
    /// Principal-component scores `(x − mean)·basis` (basis D×r, column-major).
    Pca {
        mean: Vec<f64>,
        basis: Vec<f64>,
        components: usize,
    },
}

/// How an output sample becomes a target vector, and back.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
pub enum OutputMap {
    /// `(y − mean)/std` per value; a value constant over the training set has std 0 (its
    /// prediction is that constant, with σ = 0).
    Standardize { mean: Vec<f64>, std: Vec<f64> },
    /// Coefficients `(y − mean)·basis / scale` (basis P×q, column-major, orthonormal columns).
    Pca {
        mean: Vec<f64>,
        basis: Vec<f64>,
        components: usize,
        scale: f64,
    },
}

/// The spec of a fitted GP: its section, the data's shape and the fitted values (what a
/// checkpoint's metadata stores; the arrays are stored as tensors).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GpSpec {
    pub section: GpSection,
    /// Values per input and per output sample.
    pub input_size: usize,
    pub output_size: usize,
    pub train_samples: usize,
    pub hyper: GpHyper,
    pub seed: u64,
}

/// What fitting did.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GpFitInfo {
    pub hyper: GpHyper,
    pub initial_hyper: GpHyper,
    /// Samples the hyper-parameters were fitted on.
    pub fit_samples: usize,
    /// Negative log marginal likelihood per target value, before and after the fit.
    pub initial_nlml: f64,
    pub final_nlml: f64,
    pub optimizer: Option<LbfgsReport>,
    /// Diagonal jitter added to the posterior's factor (0: none was needed).
    pub jitter: f64,
    pub feature_size: usize,
    pub target_size: usize,
    /// `exact` or `dtc(m)`.
    pub posterior: String,
    /// Variance of the input/output kept by the principal components (1 without PCA).
    pub input_variance_kept: f64,
    pub output_variance_kept: f64,
    pub hyper_seconds: f64,
    pub posterior_seconds: f64,
    /// Bytes of the largest arrays the fit held at once (kernel matrices and their factors).
    pub peak_matrix_bytes: u64,
}

/// Where a fit is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum GpProgress {
    /// Hyper-parameter iteration `iteration` of at most `of`, with its objective.
    Hyper {
        iteration: usize,
        of: usize,
        nlml: f64,
    },
    /// The posterior over all samples is being factorised.
    Posterior,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum GpError {
    #[error(transparent)]
    Invalid(#[from] InvalidParam),
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{what}: value {index} is {value}; a GP needs finite data")]
    NotFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("the {n}×{n} kernel matrix is not positive definite even with jitter {jitter:e} on its diagonal (duplicate samples with a tiny noise, or length-scales out of range)")]
    NotPositiveDefinite { n: usize, jitter: f64 },
    #[error("{n} training samples exceed the exact posterior's limit of {limit}; set `inducing` (e.g. 2000) for the DTC approximation")]
    TooLarge { n: usize, limit: usize },
    #[error("the marginal likelihood is not defined at the initial hyper-parameters {hyper:?}")]
    BadStart { hyper: GpHyper },
    #[error("{0}")]
    Corrupt(String),
    #[error("the fit was stopped")]
    Interrupted,
}

/// A posterior and what it needs to predict.
#[derive(Debug, Clone)]
enum Posterior {
    /// `L Lᵀ = K + σₙ² I` on the training features, `α = K⁻¹ T`.
    Exact { chol: Mat<f64>, alpha: Mat<f64> },
    /// DTC on inducing features: `A = σₙ² K_mm + K_mn K_nm`, `b = K_mn T`.
    Dtc {
        kmm_chol: Mat<f64>,
        a_chol: Mat<f64>,
        /// `A⁻¹ b` (m × targets).
        weights: Mat<f64>,
    },
}

/// A fitted GP operator.
#[derive(Debug, Clone)]
pub struct GpOperator {
    pub spec: GpSpec,
    pub input_map: InputMap,
    pub output_map: OutputMap,
    /// Exact: the training features (N × r) and targets (N × P'); DTC: the inducing features
    /// (m × r), the m×m matrix A and b (m × P').
    pub arrays: GpArrays,
    posterior: Posterior,
    jitter: f64,
}

/// The arrays a fitted GP is rebuilt from (stored as tensors in a checkpoint), row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum GpArrays {
    Exact {
        features: Vec<f64>,
        targets: Vec<f64>,
    },
    Dtc {
        inducing: Vec<f64>,
        a: Vec<f64>,
        b: Vec<f64>,
    },
}

/// Mean and standard deviation per output value, sample-major (M × output size).
#[derive(Debug, Clone, PartialEq)]
pub struct GpPrediction {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

fn check_finite(what: &'static str, v: &[f64]) -> Result<(), GpError> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(GpError::NotFinite {
            what,
            index,
            value: v[index],
        }),
    }
}

fn mean_std(x: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let std = var.iter().map(|s| (s / n as f64).sqrt()).collect();
    (mean, std)
}

/// `(x − mean)` as an n×d column-major matrix.
fn centred(x: &[f64], n: usize, d: usize, mean: &[f64]) -> Mat<f64> {
    Mat::from_fn(n, d, |i, j| x[i * d + j] - mean[j])
}

/// The first `r` principal directions (d×r, column-major) of the centred rows `xc` (n×d), and
/// the fraction of variance they keep. Works on the smaller of `xc xcᵀ` and `xcᵀ xc`.
fn principal_directions(xc: &Mat<f64>, r: usize) -> Result<(Mat<f64>, f64), GpError> {
    let (n, d) = (xc.nrows(), xc.ncols());
    let evd_err =
        |_| GpError::Corrupt("the eigen-decomposition for the PCA did not converge".into());
    if d <= n {
        let mut c = Mat::<f64>::zeros(d, d);
        matmul(
            c.as_mut(),
            Accum::Replace,
            xc.transpose(),
            xc.as_ref(),
            1.0,
            Par::rayon(0),
        );
        let evd = c.self_adjoint_eigen(Side::Lower).map_err(evd_err)?;
        let (s, u) = (evd.S(), evd.U());
        let total: f64 = (0..d).map(|i| s[i].max(0.0)).sum();
        let basis = Mat::from_fn(d, r, |i, k| u[(i, d - 1 - k)]);
        let kept: f64 = (0..r).map(|k| s[d - 1 - k].max(0.0)).sum();
        Ok((basis, if total > 0.0 { kept / total } else { 1.0 }))
    } else {
        let mut g = Mat::<f64>::zeros(n, n);
        matmul(
            g.as_mut(),
            Accum::Replace,
            xc.as_ref(),
            xc.transpose(),
            1.0,
            Par::rayon(0),
        );
        let evd = g.self_adjoint_eigen(Side::Lower).map_err(evd_err)?;
        let (s, u) = (evd.S(), evd.U());
        let total: f64 = (0..n).map(|i| s[i].max(0.0)).sum();
        // v_k = xcᵀ u_k / √λ_k.
        let top = Mat::from_fn(n, r, |i, k| {
            let l = s[n - 1 - k];
            if l > 0.0 {
                u[(i, n - 1 - k)] / l.sqrt()
            } else {
                0.0
            }
        });
        let mut basis = Mat::<f64>::zeros(d, r);
        matmul(
            basis.as_mut(),
            Accum::Replace,
            xc.transpose(),
            top.as_ref(),
            1.0,
            Par::rayon(0),
        );
        let kept: f64 = (0..r).map(|k| s[n - 1 - k].max(0.0)).sum();
        Ok((basis, if total > 0.0 { kept / total } else { 1.0 }))
    }
}

impl InputMap {
    fn fit(
        x: &[f64],
        n: usize,
        d: usize,
        components: Option<usize>,
    ) -> Result<(Self, f64), GpError> {
        let (mean, std) = mean_std(x, n, d);
        match components {
            None => Ok((
                Self::Standardize {
                    mean,
                    std: std.iter().map(|&s| if s > 0.0 { s } else { 1.0 }).collect(),
                },
                1.0,
            )),
            Some(r) => {
                if r > d.min(n) {
                    return Err(InvalidParam {
                        field: "input_components".into(),
                        expected: format!(
                            "at most min(training samples, values per input sample) = {}",
                            d.min(n)
                        ),
                        got: r.to_string(),
                    }
                    .into());
                }
                let (basis, kept) = principal_directions(&centred(x, n, d, &mean), r)?;
                Ok((
                    Self::Pca {
                        mean,
                        basis: col_major(&basis),
                        components: r,
                    },
                    kept,
                ))
            }
        }
    }

    fn size(&self) -> usize {
        match self {
            Self::Standardize { mean, .. } => mean.len(),
            Self::Pca { components, .. } => *components,
        }
    }

    fn input_size(&self) -> usize {
        match self {
            Self::Standardize { mean, .. } | Self::Pca { mean, .. } => mean.len(),
        }
    }

    /// Features of `n` samples (n × r).
    fn apply(&self, x: &[f64], n: usize) -> Mat<f64> {
        match self {
            Self::Standardize { mean, std } => {
                let d = mean.len();
                Mat::from_fn(n, d, |i, j| (x[i * d + j] - mean[j]) / std[j])
            }
            Self::Pca {
                mean,
                basis,
                components,
            } => {
                let d = mean.len();
                let xc = centred(x, n, d, mean);
                let b = MatRef::from_column_major_slice(basis, d, *components);
                let mut f = Mat::<f64>::zeros(n, *components);
                matmul(
                    f.as_mut(),
                    Accum::Replace,
                    xc.as_ref(),
                    b,
                    1.0,
                    Par::rayon(0),
                );
                f
            }
        }
    }
}

impl OutputMap {
    fn fit(
        y: &[f64],
        n: usize,
        p: usize,
        components: Option<usize>,
    ) -> Result<(Self, f64), GpError> {
        let (mean, std) = mean_std(y, n, p);
        match components {
            None => Ok((Self::Standardize { mean, std }, 1.0)),
            Some(q) => {
                if q > p.min(n) {
                    return Err(InvalidParam {
                        field: "output_components".into(),
                        expected: format!(
                            "at most min(training samples, values per output sample) = {}",
                            p.min(n)
                        ),
                        got: q.to_string(),
                    }
                    .into());
                }
                let (basis, kept) = principal_directions(&centred(y, n, p, &mean), q)?;
                let scale = (std.iter().map(|s| s * s).sum::<f64>() / p as f64).sqrt();
                Ok((
                    Self::Pca {
                        mean,
                        basis: col_major(&basis),
                        components: q,
                        scale: if scale > 0.0 { scale } else { 1.0 },
                    },
                    kept,
                ))
            }
        }
    }

    fn output_size(&self) -> usize {
        match self {
            Self::Standardize { mean, .. } | Self::Pca { mean, .. } => mean.len(),
        }
    }

    fn size(&self) -> usize {
        match self {
            Self::Standardize { mean, .. } => mean.len(),
            Self::Pca { components, .. } => *components,
        }
    }

    /// Targets of `n` samples (n × P').
    fn apply(&self, y: &[f64], n: usize) -> Mat<f64> {
        match self {
            Self::Standardize { mean, std } => {
                let p = mean.len();
                Mat::from_fn(n, p, |i, j| {
                    let s = if std[j] > 0.0 { std[j] } else { 1.0 };
                    (y[i * p + j] - mean[j]) / s
                })
            }
            Self::Pca {
                mean,
                basis,
                components,
                scale,
            } => {
                let p = mean.len();
                let yc = centred(y, n, p, mean);
                let b = MatRef::from_column_major_slice(basis, p, *components);
                let mut t = Mat::<f64>::zeros(n, *components);
                matmul(
                    t.as_mut(),
                    Accum::Replace,
                    yc.as_ref(),
                    b,
                    1.0 / scale,
                    Par::rayon(0),
                );
                t
            }
        }
    }

    /// Mean and std in the data's units from target means (m × P') and a target-space variance
    /// per sample.
    fn invert(&self, t: &Mat<f64>, var: &[f64]) -> GpPrediction {
        let m = t.nrows();
        match self {
            Self::Standardize { mean, std } => {
                let p = mean.len();
                let mut out_mean = vec![0.0; m * p];
                let mut out_std = vec![0.0; m * p];
                for i in 0..m {
                    let sd = var[i].max(0.0).sqrt();
                    for j in 0..p {
                        out_mean[i * p + j] = mean[j] + std[j] * t[(i, j)];
                        out_std[i * p + j] = std[j] * sd;
                    }
                }
                GpPrediction {
                    mean: out_mean,
                    std: out_std,
                }
            }
            Self::Pca {
                mean,
                basis,
                components,
                scale,
            } => {
                let p = mean.len();
                let b = MatRef::from_column_major_slice(basis, p, *components);
                let mut y = Mat::<f64>::zeros(m, p);
                matmul(
                    y.as_mut(),
                    Accum::Replace,
                    t.as_ref(),
                    b.transpose(),
                    *scale,
                    Par::rayon(0),
                );
                // Every coefficient has the same variance; a value's is that times its squared
                // basis row.
                let leverage: Vec<f64> = (0..p)
                    .map(|j| (0..*components).map(|k| b[(j, k)] * b[(j, k)]).sum())
                    .collect();
                let mut out_mean = vec![0.0; m * p];
                let mut out_std = vec![0.0; m * p];
                for i in 0..m {
                    let v = var[i].max(0.0);
                    for j in 0..p {
                        out_mean[i * p + j] = mean[j] + y[(i, j)];
                        out_std[i * p + j] = scale * (v * leverage[j]).sqrt();
                    }
                }
                GpPrediction {
                    mean: out_mean,
                    std: out_std,
                }
            }
        }
    }
}

fn col_major(m: &Mat<f64>) -> Vec<f64> {
    let mut v = Vec::with_capacity(m.nrows() * m.ncols());
    for j in 0..m.ncols() {
        v.extend_from_slice(m.col_as_slice(j));
    }
    v
}

fn row_major(m: &Mat<f64>) -> Vec<f64> {
    let mut v = vec![0.0; m.nrows() * m.ncols()];
    let c = m.ncols();
    for j in 0..c {
        for (i, x) in m.col_as_slice(j).iter().enumerate() {
            v[i * c + j] = *x;
        }
    }
    v
}

/// Features divided by their length-scales (one, or one per column).
fn scaled(f: MatRef<'_, f64>, ls: &[f64]) -> Mat<f64> {
    Mat::from_fn(f.nrows(), f.ncols(), |i, j| {
        f[(i, j)] / if ls.len() == 1 { ls[0] } else { ls[j] }
    })
}

/// Squared distances `s_ij = |a_i − b_j|²` (na × nb) by one GEMM; the diagonal of a symmetric
/// call is exactly 0.
fn sqdist(a: MatRef<'_, f64>, b: MatRef<'_, f64>, symmetric: bool) -> Mat<f64> {
    let (na, nb) = (a.nrows(), b.nrows());
    let norms = |m: MatRef<'_, f64>| -> Vec<f64> {
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)] * m[(i, j)]).sum())
            .collect()
    };
    let (na2, nb2) = (norms(a), norms(b));
    let mut s = Mat::<f64>::zeros(na, nb);
    matmul(
        s.as_mut(),
        Accum::Replace,
        a,
        b.transpose(),
        -2.0,
        Par::rayon(0),
    );
    s.par_col_iter_mut().enumerate().for_each(|(j, mut col)| {
        for i in 0..na {
            let v = &mut col[i];
            *v = (*v + na2[i] + nb2[j]).max(0.0);
        }
        if symmetric {
            col[j] = 0.0;
        }
    });
    s
}

/// `σ² g(s)` elementwise.
fn kernel_of(s: &Mat<f64>, kernel: RadialKernel, h: &GpHyper) -> Mat<f64> {
    kernel_in_place(s.clone(), kernel, h)
}

/// `σ² g(s)` elementwise, in place.
fn kernel_in_place(mut k: Mat<f64>, kernel: RadialKernel, h: &GpHyper) -> Mat<f64> {
    k.par_col_iter_mut().for_each(|mut col| {
        for i in 0..col.nrows() {
            col[i] = h.signal_variance * kernel.g(col[i], h.shape);
        }
    });
    k
}

/// The kernel between raw feature rows `a` and `b`: `σ² g(s)` on the length-scaled distances,
/// plus `σₗ² aᵀb / r` with a linear part; `symmetric` when `a` is `b`.
fn cross_kernel(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    kernel: RadialKernel,
    h: &GpHyper,
    symmetric: bool,
) -> Mat<f64> {
    let (za, zb) = (scaled(a, &h.lengthscales), scaled(b, &h.lengthscales));
    let mut k = kernel_in_place(sqdist(za.as_ref(), zb.as_ref(), symmetric), kernel, h);
    if h.linear_variance > 0.0 {
        let w = h.linear_variance / a.ncols().max(1) as f64;
        matmul(k.as_mut(), Accum::Add, a, b.transpose(), w, Par::rayon(0));
    }
    k
}

/// The lower Cholesky factor (in the lower triangle, computed in place) of the matrix `build`
/// makes. When it is not numerically positive definite, `build` makes it again with jitter
/// ε·mean(diag) on its diagonal, ε = 1e-10, 1e-9, …, 1e-4, until it is (a failed factorisation
/// has overwritten the matrix, and a copy would double the memory); returns the factor and the
/// jitter used.
fn factor(build: impl Fn() -> Mat<f64>) -> Result<(Mat<f64>, f64), GpError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let mut k = build();
    let n = k.nrows();
    let scale = (0..n).map(|i| k[(i, i)]).sum::<f64>() / n.max(1) as f64;
    let par = Par::rayon(0);
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    let mut jitter = 0.0;
    for attempt in 0..8 {
        if attempt > 0 {
            jitter = 10f64.powi(attempt - 11) * scale;
            k = build();
            for i in 0..n {
                k[(i, i)] += jitter;
            }
        }
        let stack = MemStack::new(&mut mem);
        if cholesky_in_place(
            k.as_mut(),
            Default::default(),
            par,
            stack,
            Default::default(),
        )
        .is_ok()
        {
            return Ok((k, jitter));
        }
    }
    Err(GpError::NotPositiveDefinite { n, jitter })
}

/// Negative log marginal likelihood per target value and its gradient in log parameters, for
/// features `f` (n × r, unscaled) and the targets' Gram matrix `gram = T Tᵀ` with `p` targets per
/// sample. `None` where the kernel matrix is not positive definite.
/// `linear` is the features' own Gram matrix `F Fᵀ / r` when the kernel has a linear part.
fn nlml(
    theta: &[f64],
    f: MatRef<'_, f64>,
    gram: &Mat<f64>,
    p: usize,
    kernel: RadialKernel,
    n_ls: usize,
    linear: Option<&Mat<f64>>,
) -> Option<(f64, Vec<f64>)> {
    let n = f.nrows();
    let h = GpHyper::from_log(theta, n_ls, kernel, linear.is_some());
    if !theta.iter().all(|t| t.is_finite() && t.abs() < 40.0) {
        return None;
    }
    let z = scaled(f, &h.lengthscales);
    let s = sqdist(z.as_ref(), z.as_ref(), true);
    let mut k = kernel_of(&s, kernel, &h);
    if let Some(lin) = linear {
        k.par_col_iter_mut().enumerate().for_each(|(j, mut col)| {
            for i in 0..n {
                col[i] += h.linear_variance * lin[(i, j)];
            }
        });
    }
    for i in 0..n {
        k[(i, i)] += h.noise_variance;
    }
    let llt = k.llt(Side::Lower).ok()?;
    let logdet: f64 = 2.0 * (0..n).map(|i| llt.L()[(i, i)].ln()).sum::<f64>();
    let kinv = llt.inverse();
    let mut b = Mat::<f64>::zeros(n, n);
    matmul(
        b.as_mut(),
        Accum::Replace,
        kinv.as_ref(),
        gram.as_ref(),
        1.0,
        Par::rayon(0),
    );
    let fit: f64 = (0..n).map(|i| b[(i, i)]).sum();
    let np = (n * p) as f64;
    let value = 0.5 * (fit + p as f64 * logdet + np * (2.0 * std::f64::consts::PI).ln()) / np;
    // W = K⁻¹ G K⁻¹ − p K⁻¹; ∂f/∂θ = −½ Σ W ∘ ∂K/∂θ / (n p).
    let mut w = Mat::<f64>::zeros(n, n);
    matmul(
        w.as_mut(),
        Accum::Replace,
        b.as_ref(),
        kinv.as_ref(),
        1.0,
        Par::rayon(0),
    );
    w.par_col_iter_mut().enumerate().for_each(|(j, mut col)| {
        for i in 0..n {
            col[i] -= p as f64 * kinv[(i, j)];
        }
    });
    let c = -0.5 / np;
    let (sv, alpha) = (h.signal_variance, h.shape);
    // Σ W σ²g, Σ W σ²g'(−2s) (isotropic), Σ W σ² ∂g/∂log α, column by column in parallel.
    let sums = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut acc = [0.0f64; 3];
            for i in 0..n {
                let (wij, sij) = (w[(i, j)], s[(i, j)]);
                acc[0] += wij * sv * kernel.g(sij, alpha);
                acc[1] += wij * sv * kernel.dg_ds(sij, alpha) * (-2.0 * sij);
                acc[2] += wij * sv * kernel.dg_dlog_alpha(sij, alpha);
            }
            acc
        })
        .reduce(|| [0.0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    let mut grad = vec![c * sums[0]];
    if n_ls == 1 {
        grad.push(c * sums[1]);
    } else {
        // M = W ∘ σ²g'(s); Σ_ij M_ij (−2 (z_id − z_jd)²) = −4 [Σ_i z_id² (M1)_i − z_dᵀ M z_d].
        let mut m = w.clone();
        m.par_col_iter_mut().enumerate().for_each(|(j, mut col)| {
            for i in 0..n {
                col[i] *= sv * kernel.dg_ds(s[(i, j)], alpha);
            }
        });
        let mut mz = Mat::<f64>::zeros(n, z.ncols());
        matmul(
            mz.as_mut(),
            Accum::Replace,
            m.as_ref(),
            z.as_ref(),
            1.0,
            Par::rayon(0),
        );
        let rowsum: Vec<f64> = (0..n).map(|i| (0..n).map(|j| m[(i, j)]).sum()).collect();
        for d in 0..z.ncols() {
            let mut t = 0.0;
            for i in 0..n {
                t += z[(i, d)] * (z[(i, d)] * rowsum[i] - mz[(i, d)]);
            }
            grad.push(c * (-4.0 * t));
        }
    }
    let trace_w: f64 = (0..n).map(|i| w[(i, i)]).sum();
    grad.push(c * h.noise_variance * trace_w);
    if kernel.has_shape() {
        grad.push(c * sums[2]);
    }
    if let Some(lin) = linear {
        let t: f64 = (0..n)
            .into_par_iter()
            .map(|j| (0..n).map(|i| w[(i, j)] * lin[(i, j)]).sum::<f64>())
            .sum();
        grad.push(c * h.linear_variance * t);
    }
    Some((value, grad))
}

/// The median pairwise distance among at most 500 of the feature rows (the usual initial
/// length-scale).
fn median_distance(f: MatRef<'_, f64>) -> f64 {
    let n = f.nrows().min(500);
    let s = sqdist(f.subrows(0, n), f.subrows(0, n), true);
    let mut d: Vec<f64> = (0..n)
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .map(|(i, j)| s[(i, j)].sqrt())
        .filter(|v| *v > 0.0)
        .collect();
    if d.is_empty() {
        return 1.0;
    }
    let mid = d.len() / 2;
    d.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    d[mid]
}

fn rows(m: MatRef<'_, f64>, idx: &[usize]) -> Mat<f64> {
    Mat::from_fn(idx.len(), m.ncols(), |i, j| m[(idx[i], j)])
}

impl GpOperator {
    /// Fits a GP to `n` input samples `x` (n × D, row-major) and output samples `y` (n × P).
    /// `progress` sees each stage; returning `false` stops the fit with [`GpError::Interrupted`].
    pub fn fit(
        section: &GpSection,
        x: &[f64],
        y: &[f64],
        n: usize,
        seed: u64,
        progress: impl FnMut(GpProgress) -> bool,
    ) -> Result<(Self, GpFitInfo), GpError> {
        Self::fit_inner(section, None, x, y, n, seed, progress)
    }

    /// Like [`GpOperator::fit`] with the hyper-parameters given, not fitted (the marginal
    /// likelihood is not evaluated: `initial_nlml` and `final_nlml` are NaN). Benchmarks compare
    /// posteriors at equal hyper-parameters with it.
    pub fn fit_fixed(
        section: &GpSection,
        hyper: &GpHyper,
        x: &[f64],
        y: &[f64],
        n: usize,
        seed: u64,
    ) -> Result<(Self, GpFitInfo), GpError> {
        Self::fit_inner(section, Some(hyper), x, y, n, seed, |_| true)
    }

    fn fit_inner(
        section: &GpSection,
        fixed: Option<&GpHyper>,
        x: &[f64],
        y: &[f64],
        n: usize,
        seed: u64,
        mut progress: impl FnMut(GpProgress) -> bool,
    ) -> Result<(Self, GpFitInfo), GpError> {
        section.validate()?;
        if n == 0 {
            return Err(GpError::Shape {
                what: "training samples",
                expected: "at least 1".into(),
                got: "0".into(),
            });
        }
        for (what, v) in [("inputs", x), ("outputs", y)] {
            if v.is_empty() || !v.len().is_multiple_of(n) {
                return Err(GpError::Shape {
                    what,
                    expected: format!("{n} samples of equal size"),
                    got: format!("{} values", v.len()),
                });
            }
        }
        check_finite("inputs", x)?;
        check_finite("outputs", y)?;
        let (d, p) = (x.len() / n, y.len() / n);
        if section.inducing.is_none() && n > EXACT_LIMIT {
            return Err(GpError::TooLarge {
                n,
                limit: EXACT_LIMIT,
            });
        }
        let (input_map, input_kept) = InputMap::fit(x, n, d, section.input_components)?;
        let (output_map, output_kept) = OutputMap::fit(y, n, p, section.output_components)?;
        let features = input_map.apply(x, n);
        let targets = output_map.apply(y, n);
        let (r, pt) = (features.ncols(), targets.ncols());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let fit_idx: Vec<usize> = if n > section.fit_samples {
            let mut v = sample(&mut rng, n, section.fit_samples).into_vec();
            v.sort_unstable();
            v
        } else {
            (0..n).collect()
        };
        let (ff, ft) = (
            rows(features.as_ref(), &fit_idx),
            rows(targets.as_ref(), &fit_idx),
        );
        let n_ls = if section.ard { r } else { 1 };
        let t2 = (0..pt)
            .map(|j| ft.col_as_slice(j).iter().map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            / (ft.nrows() * pt) as f64;
        let started = Instant::now();
        let (initial, hyper, initial_nlml, final_nlml, optimizer) = match fixed {
            Some(h) => {
                let ok = h.lengthscales.len() == n_ls
                    && [h.signal_variance, h.noise_variance, h.shape]
                        .iter()
                        .chain(&h.lengthscales)
                        .all(|v| v.is_finite() && *v > 0.0)
                    && h.linear_variance.is_finite()
                    && (h.linear_variance > 0.0) == section.linear;
                if !ok {
                    return Err(GpError::Corrupt(format!(
                        "fixed hyper-parameters {h:?}: expected positive values and {n_ls} length-scale(s)"
                    )));
                }
                (h.clone(), h.clone(), f64::NAN, f64::NAN, None)
            }
            None => {
                let variance = if t2 > 0.0 { t2 } else { 1.0 };
                // With a linear part, the two kernels start with half the targets' variance each.
                let split = if section.linear { 0.5 } else { 1.0 };
                let initial = GpHyper {
                    signal_variance: split * variance,
                    lengthscales: vec![median_distance(ff.as_ref()); n_ls],
                    noise_variance: section.noise,
                    shape: 1.0,
                    linear_variance: if section.linear {
                        split * variance
                    } else {
                        0.0
                    },
                };
                let mut gram = Mat::<f64>::zeros(ff.nrows(), ff.nrows());
                matmul(
                    gram.as_mut(),
                    Accum::Replace,
                    ft.as_ref(),
                    ft.transpose(),
                    1.0,
                    Par::rayon(0),
                );
                let linear = section.linear.then(|| {
                    let mut g = Mat::<f64>::zeros(ff.nrows(), ff.nrows());
                    let w = 1.0 / r as f64;
                    matmul(
                        g.as_mut(),
                        Accum::Replace,
                        ff.as_ref(),
                        ff.transpose(),
                        w,
                        Par::rayon(0),
                    );
                    g
                });
                let objective = |t: &[f64]| {
                    nlml(
                        t,
                        ff.as_ref(),
                        &gram,
                        pt,
                        section.kernel,
                        n_ls,
                        linear.as_ref(),
                    )
                };
                let mut theta = initial.to_log(section.kernel, section.linear);
                let (initial_nlml, _) = objective(&theta).ok_or_else(|| GpError::BadStart {
                    hyper: initial.clone(),
                })?;
                let of = section.iterations;
                let optimizer = if of > 0 {
                    lbfgs::minimize(&mut theta, objective, of, 1e-6, 1e-10, |iteration, nlml| {
                        progress(GpProgress::Hyper {
                            iteration,
                            of,
                            nlml,
                        })
                    })
                } else {
                    None
                };
                if optimizer.as_ref().is_some_and(|o| o.stopped) {
                    return Err(GpError::Interrupted);
                }
                let hyper = GpHyper::from_log(&theta, n_ls, section.kernel, section.linear);
                let final_nlml = optimizer.as_ref().map_or(initial_nlml, |o| o.value);
                (initial, hyper, initial_nlml, final_nlml, optimizer)
            }
        };
        let hyper_seconds = started.elapsed().as_secs_f64();
        if !progress(GpProgress::Posterior) {
            return Err(GpError::Interrupted);
        }
        let started = Instant::now();
        let spec = GpSpec {
            section: section.clone(),
            input_size: d,
            output_size: p,
            train_samples: n,
            hyper: hyper.clone(),
            seed,
        };
        let nf = ff.nrows() as u64;
        let arrays = match section.inducing {
            None => GpArrays::Exact {
                features: row_major(&features),
                targets: row_major(&targets),
            },
            Some(m) => {
                let m = m.min(n);
                let mut idx = sample(&mut rng, n, m).into_vec();
                idx.sort_unstable();
                let zm = rows(features.as_ref(), &idx);
                // A = σₙ² K_mm + K_mn K_nm and b = K_mn T, accumulated over row blocks of the
                // training set so K_nm is never held whole.
                let kmm = cross_kernel(zm.as_ref(), zm.as_ref(), section.kernel, &hyper, true);
                let mut a = kmm.clone();
                a.par_col_iter_mut().for_each(|mut c| {
                    for i in 0..c.nrows() {
                        c[i] *= hyper.noise_variance;
                    }
                });
                let mut b = Mat::<f64>::zeros(m, pt);
                for start in (0..n).step_by(4096) {
                    let len = 4096.min(n - start);
                    let knm = cross_kernel(
                        features.subrows(start, len),
                        zm.as_ref(),
                        section.kernel,
                        &hyper,
                        false,
                    );
                    matmul(
                        a.as_mut(),
                        Accum::Add,
                        knm.transpose(),
                        knm.as_ref(),
                        1.0,
                        Par::rayon(0),
                    );
                    matmul(
                        b.as_mut(),
                        Accum::Add,
                        knm.transpose(),
                        targets.subrows(start, len),
                        1.0,
                        Par::rayon(0),
                    );
                }
                GpArrays::Dtc {
                    inducing: row_major(&zm),
                    a: row_major(&a),
                    b: row_major(&b),
                }
            }
        };
        let mut gp = Self::from_parts(spec, input_map, output_map, arrays)?;
        let posterior_seconds = started.elapsed().as_secs_f64();
        let npost = match section.inducing {
            None => n as u64,
            Some(m) => m.min(n) as u64,
        };
        // The hyper-parameter fit holds S, K, its factor, K⁻¹, K⁻¹G and W (and G) for the fit
        // samples; the exact posterior K factored in place; DTC K_mm, A and their factors and
        // a block of K_nm.
        let fit_bytes = if fixed.is_some() { 0 } else { 8 * 7 * nf * nf };
        let posterior_bytes = match section.inducing {
            None => 8 * npost * npost,
            Some(_) => 8 * (4 * npost * npost + npost * 4096.min(n as u64)),
        };
        let peak_matrix_bytes = fit_bytes.max(posterior_bytes);
        gp.spec.hyper = hyper.clone();
        let info = GpFitInfo {
            hyper,
            initial_hyper: initial,
            fit_samples: fit_idx.len(),
            initial_nlml,
            final_nlml,
            optimizer,
            jitter: gp.jitter,
            feature_size: r,
            target_size: pt,
            posterior: match section.inducing {
                None => "exact".into(),
                Some(m) => format!("dtc({})", m.min(n)),
            },
            input_variance_kept: input_kept,
            output_variance_kept: output_kept,
            hyper_seconds,
            posterior_seconds,
            peak_matrix_bytes,
        };
        Ok((gp, info))
    }

    /// Rebuilds a fitted GP from its spec, maps and arrays (as stored in a checkpoint): the
    /// factors are recomputed, deterministically, so predictions are bit-identical.
    pub fn from_parts(
        spec: GpSpec,
        input_map: InputMap,
        output_map: OutputMap,
        arrays: GpArrays,
    ) -> Result<Self, GpError> {
        let bad = |m: String| GpError::Corrupt(m);
        spec.section.validate()?;
        let (r, pt) = (input_map.size(), output_map.size());
        if input_map.input_size() != spec.input_size || output_map.output_size() != spec.output_size
        {
            return Err(bad(format!(
                "the maps take {} input and give {} output values per sample; the spec says {} and {}",
                input_map.input_size(),
                output_map.output_size(),
                spec.input_size,
                spec.output_size
            )));
        }
        let n_ls = spec.hyper.lengthscales.len();
        if n_ls != 1 && n_ls != r {
            return Err(bad(format!("{n_ls} length-scales for {r} features")));
        }
        let h = &spec.hyper;
        let kernel = spec.section.kernel;
        let (posterior, jitter) = match &arrays {
            GpArrays::Exact { features, targets } => {
                let n = spec.train_samples;
                if features.len() != n * r || targets.len() != n * pt {
                    return Err(bad(format!(
                        "exact posterior arrays of {} and {} values; expected {n}×{r} and {n}×{pt}",
                        features.len(),
                        targets.len()
                    )));
                }
                let f = MatRef::from_row_major_slice(features, n, r);
                let (chol, jitter) = factor(|| {
                    let mut k = cross_kernel(f, f, kernel, h, true);
                    for i in 0..n {
                        k[(i, i)] += h.noise_variance;
                    }
                    k
                })?;
                let mut alpha = MatRef::from_row_major_slice(targets, n, pt).to_owned();
                solve_lower_triangular_in_place(chol.as_ref(), alpha.as_mut(), Par::rayon(0));
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                    chol.transpose(),
                    alpha.as_mut(),
                    Par::rayon(0),
                );
                (Posterior::Exact { chol, alpha }, jitter)
            }
            GpArrays::Dtc { inducing, a, b } => {
                let m = inducing.len() / r.max(1);
                if inducing.len() != m * r || a.len() != m * m || b.len() != m * pt {
                    return Err(bad(format!(
                        "DTC arrays of {}, {} and {} values do not fit {r} features and {pt} targets",
                        inducing.len(),
                        a.len(),
                        b.len()
                    )));
                }
                let zm = MatRef::from_row_major_slice(inducing, m, r);
                let (kmm_chol, j1) = factor(|| {
                    let mut kmm = cross_kernel(zm, zm, kernel, h, true);
                    // K_mm alone has no noise on its diagonal: a small fixed jitter keeps it
                    // factorable.
                    for i in 0..m {
                        kmm[(i, i)] += 1e-8 * h.signal_variance;
                    }
                    kmm
                })?;
                let (a_chol, j2) = factor(|| MatRef::from_row_major_slice(a, m, m).to_owned())?;
                let mut weights = MatRef::from_row_major_slice(b, m, pt).to_owned();
                solve_lower_triangular_in_place(a_chol.as_ref(), weights.as_mut(), Par::rayon(0));
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                    a_chol.transpose(),
                    weights.as_mut(),
                    Par::rayon(0),
                );
                (
                    Posterior::Dtc {
                        kmm_chol,
                        a_chol,
                        weights,
                    },
                    j1.max(j2),
                )
            }
        };
        Ok(Self {
            spec,
            input_map,
            output_map,
            arrays,
            posterior,
            jitter,
        })
    }

    /// Mean and standard deviation of `m` input samples (m × D, row-major).
    pub fn predict(&self, x: &[f64], m: usize) -> Result<GpPrediction, GpError> {
        let d = self.spec.input_size;
        if x.len() != m * d {
            return Err(GpError::Shape {
                what: "inputs to predict",
                expected: format!("{m} samples of {d} values (the training samples' size)"),
                got: format!("{} values", x.len()),
            });
        }
        check_finite("inputs to predict", x)?;
        let p = self.spec.output_size;
        let mut out = GpPrediction {
            mean: Vec::with_capacity(m * p),
            std: Vec::with_capacity(m * p),
        };
        const BLOCK: usize = 256;
        for start in (0..m).step_by(BLOCK) {
            let len = BLOCK.min(m - start);
            let part = self.predict_block(&x[start * d..(start + len) * d], len);
            out.mean.extend(part.mean);
            out.std.extend(part.std);
        }
        Ok(out)
    }

    fn predict_block(&self, x: &[f64], m: usize) -> GpPrediction {
        let h = &self.spec.hyper;
        let ft = self.input_map.apply(x, m);
        let r = self.input_map.size();
        let prior: Vec<f64> = (0..m)
            .map(|i| h.prior_variance(&(0..r).map(|j| ft[(i, j)]).collect::<Vec<_>>()))
            .collect();
        let (ks, mean) = self.cross_and_mean(ft.as_ref());
        // Σ of squares of each column of L⁻¹ k*: k*ᵀ (L Lᵀ)⁻¹ k*.
        let quad = |chol: &Mat<f64>| -> Vec<f64> {
            let mut v = ks.transpose().to_owned();
            solve_lower_triangular_in_place(chol.as_ref(), v.as_mut(), Par::rayon(0));
            (0..m)
                .map(|i| v.col_as_slice(i).iter().map(|x| x * x).sum())
                .collect()
        };
        let var: Vec<f64> = match &self.posterior {
            // k** − k*ᵀ K⁻¹ k* + σₙ².
            Posterior::Exact { chol, .. } => {
                let q = quad(chol);
                (0..m).map(|i| prior[i] - q[i] + h.noise_variance).collect()
            }
            // k** − k*ᵀ K_mm⁻¹ k* + σₙ² k*ᵀ A⁻¹ k* + σₙ².
            Posterior::Dtc {
                kmm_chol, a_chol, ..
            } => {
                let (q1, q2) = (quad(kmm_chol), quad(a_chol));
                (0..m)
                    .map(|i| prior[i] - q1[i] + h.noise_variance * q2[i] + h.noise_variance)
                    .collect()
            }
        };
        self.output_map.invert(&mean, &var)
    }

    /// The features of `m` input samples (m × feature size, row-major): what the kernel sees.
    pub fn features(&self, x: &[f64], m: usize) -> Result<Vec<f64>, GpError> {
        let d = self.spec.input_size;
        if x.len() != m * d {
            return Err(GpError::Shape {
                what: "inputs",
                expected: format!("{m} samples of {d} values"),
                got: format!("{} values", x.len()),
            });
        }
        Ok(row_major(&self.input_map.apply(x, m)))
    }

    /// Output samples in the data's units from target-space means (m × target size, row-major).
    pub fn from_targets(&self, t: &[f64], m: usize) -> Vec<f64> {
        let pt = self.output_map.size();
        let t = MatRef::from_row_major_slice(t, m, pt).to_owned();
        self.output_map.invert(&t, &vec![0.0; m]).mean
    }

    /// The target-space means of `m` input samples (m × target size, row-major).
    pub fn predict_targets(&self, x: &[f64], m: usize) -> Result<Vec<f64>, GpError> {
        let r = self.input_map.size();
        let f = self.features(x, m)?;
        let (_, mean) = self.cross_and_mean(MatRef::from_row_major_slice(&f, m, r));
        Ok(row_major(&mean))
    }

    /// The kernel between features `ft` and the posterior's points (training samples, or
    /// inducing ones), and the target-space means it gives.
    fn cross_and_mean(&self, ft: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>) {
        let r = self.input_map.size();
        let (points, weights) = match (&self.posterior, &self.arrays) {
            (Posterior::Exact { alpha, .. }, GpArrays::Exact { features, .. }) => (
                MatRef::from_row_major_slice(features, alpha.nrows(), r),
                alpha,
            ),
            (Posterior::Dtc { weights, .. }, GpArrays::Dtc { inducing, .. }) => (
                MatRef::from_row_major_slice(inducing, weights.nrows(), r),
                weights,
            ),
            _ => unreachable!("from_parts pairs each posterior with its arrays"),
        };
        let ks = cross_kernel(
            ft,
            points,
            self.spec.section.kernel,
            &self.spec.hyper,
            false,
        );
        let mut mean = Mat::<f64>::zeros(ft.nrows(), weights.ncols());
        matmul(
            mean.as_mut(),
            Accum::Replace,
            ks.as_ref(),
            weights.as_ref(),
            1.0,
            Par::rayon(0),
        );
        (ks, mean)
    }

    /// The training features and targets of an exact posterior (row-major), `None` for DTC.
    pub fn training_arrays(&self) -> Option<(&[f64], &[f64])> {
        match &self.arrays {
            GpArrays::Exact { features, targets } => Some((features, targets)),
            GpArrays::Dtc { .. } => None,
        }
    }

    /// Bytes of the arrays a checkpoint stores.
    pub fn stored_bytes(&self) -> u64 {
        let arrays = match &self.arrays {
            GpArrays::Exact { features, targets } => features.len() + targets.len(),
            GpArrays::Dtc { inducing, a, b } => inducing.len() + a.len() + b.len(),
        };
        let maps = match &self.input_map {
            InputMap::Standardize { mean, std } => mean.len() + std.len(),
            InputMap::Pca { mean, basis, .. } => mean.len() + basis.len(),
        } + match &self.output_map {
            OutputMap::Standardize { mean, std } => mean.len() + std.len(),
            OutputMap::Pca { mean, basis, .. } => mean.len() + basis.len(),
        };
        8 * (arrays + maps) as u64
    }
}

/// Calibration of Gaussian predictions against truth: the fraction of values within ±z·σ for
/// each `z`, and the mean negative log predictive density. Values with σ = 0 (constant in the
/// training data) are left out; their count is returned.
pub fn calibration(mean: &[f64], std: &[f64], truth: &[f64], z: &[f64]) -> (Vec<f64>, f64, usize) {
    let mut inside = vec![0usize; z.len()];
    let (mut nlpd, mut counted, mut skipped) = (0.0, 0usize, 0usize);
    for ((m, s), t) in mean.iter().zip(std).zip(truth) {
        if *s <= 0.0 {
            skipped += 1;
            continue;
        }
        let e = (t - m).abs() / s;
        for (c, zk) in inside.iter_mut().zip(z) {
            if e <= *zk {
                *c += 1;
            }
        }
        nlpd += 0.5 * e * e + s.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln();
        counted += 1;
    }
    let c = counted.max(1) as f64;
    (
        inside.iter().map(|&k| k as f64 / c).collect(),
        nlpd / c,
        skipped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::StandardNormal;

    fn fd_check(kernel: RadialKernel, ard: bool, linear: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, r, p) = (14, 3, 2);
        let f = Mat::from_fn(n, r, |_, _| rng.gen::<f64>() * 2.0 - 1.0);
        let t = Mat::from_fn(n, p, |_, _| rng.gen::<f64>() - 0.5);
        let mut gram = Mat::<f64>::zeros(n, n);
        matmul(
            gram.as_mut(),
            Accum::Replace,
            t.as_ref(),
            t.transpose(),
            1.0,
            Par::Seq,
        );
        let n_ls = if ard { r } else { 1 };
        let h = GpHyper {
            signal_variance: 0.8,
            lengthscales: (0..n_ls).map(|i| 0.7 + 0.3 * i as f64).collect(),
            noise_variance: 0.05,
            shape: 1.3,
            linear_variance: if linear { 0.4 } else { 0.0 },
        };
        let lin = linear.then(|| {
            let mut g = Mat::<f64>::zeros(n, n);
            matmul(
                g.as_mut(),
                Accum::Replace,
                f.as_ref(),
                f.transpose(),
                1.0 / r as f64,
                Par::Seq,
            );
            g
        });
        let theta = h.to_log(kernel, linear);
        let (_, grad) = nlml(&theta, f.as_ref(), &gram, p, kernel, n_ls, lin.as_ref()).unwrap();
        for k in 0..theta.len() {
            let e = 1e-5;
            let (mut a, mut b) = (theta.clone(), theta.clone());
            a[k] += e;
            b[k] -= e;
            let fd = (nlml(&a, f.as_ref(), &gram, p, kernel, n_ls, lin.as_ref())
                .unwrap()
                .0
                - nlml(&b, f.as_ref(), &gram, p, kernel, n_ls, lin.as_ref())
                    .unwrap()
                    .0)
                / (2.0 * e);
            assert!(
                (fd - grad[k]).abs() <= 1e-6 * fd.abs().max(1e-2),
                "{kernel:?} ard={ard} linear={linear} θ[{k}]: finite difference {fd}, analytic {}",
                grad[k]
            );
        }
    }

    #[test]
    fn marginal_likelihood_gradient_matches_finite_differences_for_every_kernel() {
        for kernel in RadialKernel::ALL {
            fd_check(kernel, false, false);
            fd_check(kernel, true, false);
            fd_check(kernel, false, true);
        }
        fd_check(RadialKernel::Matern52, true, true);
    }

    fn line(n: usize) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let y = x.iter().map(|v| (6.0 * v).sin() + 0.5 * v).collect();
        (x, y)
    }

    #[test]
    fn interpolates_noise_free_data_and_its_variance_vanishes_only_at_training_inputs() {
        let (x, y) = line(12);
        let section = GpSection {
            kernel: RadialKernel::Matern32,
            noise: 1e-10,
            iterations: 0,
            ..GpSection::default()
        };
        let (gp, info) = GpOperator::fit(&section, &x, &y, 12, 0, |_| true).unwrap();
        assert_eq!(info.posterior, "exact");
        let at = gp.predict(&x, 12).unwrap();
        for (i, yi) in y.iter().enumerate() {
            assert!(
                (at.mean[i] - yi).abs() < 1e-4,
                "{i}: {} vs {yi}",
                at.mean[i]
            );
            assert!(at.std[i] < 1e-3, "σ at a training input: {}", at.std[i]);
        }
        // Between training inputs σ is larger, and it grows with the distance from the data.
        let probe = [0.5 / 11.0, 1.2, 2.0];
        let away = gp.predict(&probe, 3).unwrap();
        let at_max = at.std.iter().cloned().fold(0.0, f64::max);
        assert!(away.std[0] > 10.0 * at_max, "{:?} vs {at_max}", away.std);
        assert!(
            away.std[0] < away.std[1] && away.std[1] < away.std[2],
            "{:?}",
            away.std
        );
    }

    #[test]
    fn fitting_raises_the_likelihood_and_recovers_a_smooth_function() {
        let (x, y) = line(40);
        for kernel in RadialKernel::ALL {
            let section = GpSection {
                kernel,
                ..GpSection::default()
            };
            let (gp, info) = GpOperator::fit(&section, &x, &y, 40, 0, |_| true).unwrap();
            assert!(info.final_nlml < info.initial_nlml, "{kernel:?}: {info:?}");
            let probe: Vec<f64> = (0..25).map(|i| (i as f64 + 0.3) / 25.0).collect();
            let pred = gp.predict(&probe, 25).unwrap();
            for (i, v) in probe.iter().enumerate() {
                let truth = (6.0 * v).sin() + 0.5 * v;
                assert!((pred.mean[i] - truth).abs() < 2e-2, "{kernel:?} at {v}");
            }
        }
    }

    #[test]
    fn coverage_on_data_drawn_from_a_gp_is_near_nominal() {
        // Inputs in R³, outputs: 20 values per sample drawn from a GP with a known RBF kernel.
        let (n, nt, d, p) = (300, 300, 3, 20);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = Mat::from_fn(n + nt, d, |_, _| rng.gen::<f64>() * 3.0);
        let truth = GpHyper {
            signal_variance: 1.0,
            lengthscales: vec![0.8],
            noise_variance: 1e-3,
            shape: 1.0,
            linear_variance: 0.0,
        };
        let z = scaled(x.as_ref(), &truth.lengthscales);
        let mut k = kernel_of(
            &sqdist(z.as_ref(), z.as_ref(), true),
            RadialKernel::Rbf,
            &truth,
        );
        for i in 0..n + nt {
            k[(i, i)] += truth.noise_variance;
        }
        let l = k.llt(Side::Lower).unwrap().L().to_owned();
        let w = Mat::from_fn(n + nt, p, |_, _| rng.sample::<f64, _>(StandardNormal));
        let mut ys = Mat::<f64>::zeros(n + nt, p);
        matmul(
            ys.as_mut(),
            Accum::Replace,
            l.as_ref(),
            w.as_ref(),
            1.0,
            Par::Seq,
        );
        let (xr, yr) = (row_major(&x), row_major(&ys));
        let section = GpSection {
            kernel: RadialKernel::Rbf,
            ..GpSection::default()
        };
        let (gp, _) =
            GpOperator::fit(&section, &xr[..n * d], &yr[..n * p], n, 0, |_| true).unwrap();
        let pred = gp.predict(&xr[n * d..], nt).unwrap();
        let (inside, _, skipped) = calibration(&pred.mean, &pred.std, &yr[n * p..], &[2.0]);
        assert_eq!(skipped, 0);
        assert!(
            (0.9..=0.98).contains(&inside[0]),
            "±2σ coverage {}",
            inside[0]
        );
    }

    #[test]
    fn pca_ard_and_dtc_fit_and_rebuild_bit_identically() {
        let (n, d, p) = (120, 30, 25);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: Vec<f64> = (0..n * d).map(|_| rng.gen::<f64>()).collect();
        // Each output is a smooth function of a few input means.
        let y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let a: f64 = x[i * d..i * d + 10].iter().sum::<f64>() / 10.0;
                let b: f64 = x[i * d + 10..(i + 1) * d].iter().sum::<f64>() / 20.0;
                (0..p).map(move |j| (a * j as f64 / 5.0).sin() + b * b)
            })
            .collect();
        for section in [
            GpSection {
                input_components: Some(8),
                ard: true,
                output_components: Some(6),
                iterations: 30,
                ..GpSection::default()
            },
            GpSection {
                inducing: Some(40),
                kernel: RadialKernel::RationalQuadratic,
                iterations: 30,
                ..GpSection::default()
            },
            GpSection {
                linear: true,
                iterations: 30,
                ..GpSection::default()
            },
        ] {
            let (gp, info) = GpOperator::fit(&section, &x, &y, n, 9, |_| true).unwrap();
            assert!(info.final_nlml <= info.initial_nlml);
            let a = gp.predict(&x[..10 * d], 10).unwrap();
            let rebuilt = GpOperator::from_parts(
                gp.spec.clone(),
                gp.input_map.clone(),
                gp.output_map.clone(),
                gp.arrays.clone(),
            )
            .unwrap();
            let b = rebuilt.predict(&x[..10 * d], 10).unwrap();
            assert_eq!(a, b);
            // Training samples are predicted well.
            let err: f64 = a
                .mean
                .iter()
                .zip(&y[..10 * p])
                .map(|(u, v)| (u - v).powi(2))
                .sum::<f64>()
                .sqrt()
                / y[..10 * p].iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(err < 0.05, "{section:?}: {err}");
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let s = GpSection::default();
        let e = GpOperator::fit(&s, &[], &[], 0, 0, |_| true).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = GpOperator::fit(&s, &[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 0, |_| true).unwrap_err();
        assert!(e.to_string().contains("inputs"), "{e}");
        let e = GpOperator::fit(&s, &[1.0, f64::NAN], &[1.0, 2.0], 2, 0, |_| true).unwrap_err();
        assert!(e.to_string().contains("value 1 is NaN"), "{e}");
        let bad = GpSection {
            ard: true,
            ..GpSection::default()
        };
        let e = GpOperator::fit(&bad, &[1.0, 2.0], &[1.0, 2.0], 2, 0, |_| true).unwrap_err();
        assert!(e.to_string().starts_with("ard:"), "{e}");
        let (x, y) = line(5);
        let (gp, _) = GpOperator::fit(&s, &x, &y, 5, 0, |_| true).unwrap();
        let e = gp.predict(&[0.1, 0.2], 1).unwrap_err();
        assert!(e.to_string().contains("1 samples of 1 values"), "{e}");
    }

    #[test]
    fn a_matrix_that_is_not_positive_definite_gets_jitter_or_a_clear_error() {
        // Rank one: PSD but singular, so jitter makes it factorable, and says how much.
        let v = [1.0, 2.0, 3.0];
        let k = Mat::from_fn(3, 3, |i, j| v[i] * v[j]);
        let (_, jitter) = factor(|| k.clone()).unwrap();
        assert!(jitter > 0.0);
        // Indefinite beyond any jitter.
        let k = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 3.0 });
        let e = factor(|| k.clone()).unwrap_err();
        assert!(
            matches!(e, GpError::NotPositiveDefinite { n: 2, .. }),
            "{e}"
        );
    }
}
