//! Gaussian random fields and the coefficient fields built from them.
//!
//! The field is periodic on the unit torus with covariance `σ² (−Δ + τ² I)^(−α)`, the FNO benchmark's
//! construction: its Fourier coefficients are independent complex Gaussians scaled by the square root
//! of the covariance's eigenvalues `λ_k = σ² (4π²|k|² + τ²)^(−α)`, and the field is the real part of
//! their inverse FFT. With `ξ_k = a + ib`, `a, b ~ N(0, 1)`, the real part has exactly covariance
//! `Σ_k λ_k cos(2πk·(x − y))`, the covariance above. The mean mode is zero.

use crate::param::{positive, require, InvalidParam};
use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use rustfft::{num_complex::Complex64, Fft, FftPlanner};
use std::sync::Arc;
use thiserror::Error;

/// Parameters of a Gaussian random field `N(0, σ² (−Δ + τ² I)^(−α))` on the unit torus.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct GrfParams {
    /// Smoothness exponent α (> d/2 for a continuous field in d dimensions).
    pub alpha: f64,
    /// Inverse length scale τ.
    pub tau: f64,
    /// Amplitude σ; `None` uses the FNO convention `τ^(α − d/2)`, which keeps the field O(1).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub sigma: Option<f64>,
}

impl Default for GrfParams {
    /// The FNO Darcy benchmark's field: α = 2, τ = 3.
    fn default() -> Self {
        Self {
            alpha: 2.0,
            tau: 3.0,
            sigma: None,
        }
    }
}

impl GrfParams {
    pub fn new(alpha: f64, tau: f64, sigma: Option<f64>) -> Self {
        Self { alpha, tau, sigma }
    }

    pub fn validate(&self) -> Result<(), InvalidParam> {
        require(
            positive(self.alpha),
            "alpha",
            "a positive number",
            self.alpha,
        )?;
        require(positive(self.tau), "tau", "a positive number", self.tau)?;
        match self.sigma {
            Some(s) => require(positive(s), "sigma", "a positive number", s),
            None => Ok(()),
        }
    }

    /// The amplitude actually used in dimension `dim`.
    pub fn sigma_for_dim(&self, dim: usize) -> f64 {
        self.sigma
            .unwrap_or_else(|| self.tau.powf(self.alpha - dim as f64 / 2.0))
    }

    /// Eigenvalue of the covariance for the integer wavenumber `(kx, ky)`.
    pub fn eigenvalue_2d(&self, kx: f64, ky: f64) -> f64 {
        let s = self.sigma_for_dim(2);
        let four_pi2 = 4.0 * std::f64::consts::PI * std::f64::consts::PI;
        s * s * (four_pi2 * (kx * kx + ky * ky) + self.tau * self.tau).powf(-self.alpha)
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum FieldError {
    #[error("a random field needs at least 2 points per side, got {resolution}")]
    TooSmall { resolution: usize },
    #[error(transparent)]
    Invalid(#[from] InvalidParam),
}

/// Signed integer wavenumber of FFT bin `i` on an axis of `n` points.
pub fn wavenumber(i: usize, n: usize) -> f64 {
    if i <= n / 2 {
        i as f64
    } else {
        i as f64 - n as f64
    }
}

/// Draws 2-D Gaussian random fields on an `s × s` periodic grid. Build once, sample many times; it
/// is `Sync`, so one sampler serves all threads.
pub struct GrfSampler2d {
    n: usize,
    /// `sqrt(λ_k)` in FFT order, row-major `[kx, ky]`, mean mode zeroed.
    sqrt_eig: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for GrfSampler2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrfSampler2d").field("n", &self.n).finish()
    }
}

impl GrfSampler2d {
    pub fn new(resolution: usize, params: GrfParams) -> Result<Self, FieldError> {
        Self::validate(resolution, &params)?;
        let n = resolution;
        let mut sqrt_eig = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                sqrt_eig[i * n + j] = params
                    .eigenvalue_2d(wavenumber(i, n), wavenumber(j, n))
                    .sqrt();
            }
        }
        sqrt_eig[0] = 0.0;
        let fft = FftPlanner::new().plan_fft_inverse(n);
        Ok(Self { n, sqrt_eig, fft })
    }

    fn validate(resolution: usize, params: &GrfParams) -> Result<(), FieldError> {
        if resolution < 2 {
            return Err(FieldError::TooSmall { resolution });
        }
        Ok(params.validate()?)
    }

    pub fn resolution(&self) -> usize {
        self.n
    }

    /// Draw one field from `rng`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Array2<f64> {
        let n = self.n;
        let mut buf = scaled_gaussians(&self.sqrt_eig, rng);
        let mut scratch = vec![Complex64::default(); self.fft.get_inplace_scratch_len()];
        // Rows (contiguous in ky), then columns through a transpose.
        self.fft.process_with_scratch(&mut buf, &mut scratch);
        let mut t = vec![Complex64::default(); n * n];
        transpose(&buf, &mut t, n);
        self.fft.process_with_scratch(&mut t, &mut scratch);
        // The inverse FFT here is the plain sum Σ_k c_k e^{2πik·x}: no 1/n² factor.
        Array2::from_shape_fn((n, n), |(i, j)| t[j * n + i].re)
    }
}

/// Draws 1-D Gaussian random fields on `n` points of the periodic unit interval (`x_i = i/n`).
pub struct GrfSampler1d {
    sqrt_eig: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for GrfSampler1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrfSampler1d")
            .field("n", &self.sqrt_eig.len())
            .finish()
    }
}

impl GrfSampler1d {
    pub fn new(resolution: usize, params: GrfParams) -> Result<Self, FieldError> {
        // Reuse the 2-D checks; they do not depend on the dimension.
        GrfSampler2d::validate(resolution, &params)?;
        let n = resolution;
        let s = params.sigma_for_dim(1);
        let four_pi2 = 4.0 * std::f64::consts::PI * std::f64::consts::PI;
        let mut sqrt_eig: Vec<f64> = (0..n)
            .map(|i| {
                let k = wavenumber(i, n);
                s * (four_pi2 * k * k + params.tau * params.tau).powf(-params.alpha / 2.0)
            })
            .collect();
        sqrt_eig[0] = 0.0;
        Ok(Self {
            sqrt_eig,
            fft: FftPlanner::new().plan_fft_inverse(n),
        })
    }

    pub fn resolution(&self) -> usize {
        self.sqrt_eig.len()
    }

    /// Draw one field from `rng`: the real part of `Σ_k sqrt(λ_k) ξ_k e^{2πikx}`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut buf = scaled_gaussians(&self.sqrt_eig, rng);
        self.fft.process(&mut buf);
        buf.iter().map(|c| c.re).collect()
    }
}

/// Draws 3-D Gaussian random fields on an `n × n × n` periodic grid, row-major `[x][y][z]`.
pub struct GrfSampler3d {
    n: usize,
    sqrt_eig: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for GrfSampler3d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrfSampler3d").field("n", &self.n).finish()
    }
}

impl GrfSampler3d {
    pub fn new(resolution: usize, params: GrfParams) -> Result<Self, FieldError> {
        GrfSampler2d::validate(resolution, &params)?;
        let n = resolution;
        let s = params.sigma_for_dim(3);
        let four_pi2 = 4.0 * std::f64::consts::PI * std::f64::consts::PI;
        let mut sqrt_eig = vec![0.0; n * n * n];
        for (p, v) in sqrt_eig.iter_mut().enumerate() {
            let (i, j, k) = (p / (n * n), (p / n) % n, p % n);
            let (a, b, c) = (wavenumber(i, n), wavenumber(j, n), wavenumber(k, n));
            let lam = s
                * s
                * (four_pi2 * (a * a + b * b + c * c) + params.tau * params.tau)
                    .powf(-params.alpha);
            *v = lam.sqrt();
        }
        sqrt_eig[0] = 0.0;
        Ok(Self {
            n,
            sqrt_eig,
            fft: FftPlanner::new().plan_fft_inverse(n),
        })
    }

    /// Draw one field from `rng` (flattened `[x][y][z]`).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let n = self.n;
        let mut buf = scaled_gaussians(&self.sqrt_eig, rng);
        // Along z (contiguous), then y and x through gathered lines.
        self.fft.process(&mut buf);
        let mut line = vec![Complex64::default(); n];
        for stride in [n, n * n] {
            for base in 0..n * n * n {
                // `base` is the first point of a line along the axis with this stride.
                if (base / stride) % n != 0 {
                    continue;
                }
                for (t, l) in line.iter_mut().enumerate() {
                    *l = buf[base + t * stride];
                }
                self.fft.process(&mut line);
                for (t, l) in line.iter().enumerate() {
                    buf[base + t * stride] = *l;
                }
            }
        }
        buf.iter().map(|c| c.re).collect()
    }
}

/// Independent complex Gaussians `s·(a + ib)`, `a, b ~ N(0, 1)`, one per scale `s`.
fn scaled_gaussians<R: Rng + ?Sized>(scales: &[f64], rng: &mut R) -> Vec<Complex64> {
    scales
        .iter()
        .map(|&s| {
            let re: f64 = rng.sample(StandardNormal);
            let im: f64 = rng.sample(StandardNormal);
            Complex64::new(s * re, s * im)
        })
        .collect()
}

fn transpose(src: &[Complex64], dst: &mut [Complex64], n: usize) {
    for i in 0..n {
        for j in 0..n {
            dst[j * n + i] = src[i * n + j];
        }
    }
}

/// How a Gaussian random field becomes a positive coefficient field. In a config: `kind =
/// "threshold"` (with `high` and `low`, default 12 and 3) or `kind = "lognormal"`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "lowercase", from = "TransformKeys")
)]
pub enum CoefficientTransform {
    /// `a = high` where the field is ≥ 0 and `low` elsewhere (the FNO Darcy benchmark: 12 and 3).
    Threshold { high: f64, low: f64 },
    /// `a = exp(field)` (log-normal).
    LogNormal,
}

impl Default for CoefficientTransform {
    fn default() -> Self {
        Self::Threshold {
            high: 12.0,
            low: 3.0,
        }
    }
}

/// The keys a transform is read from: `kind` defaults to threshold, and `high`/`low` to the FNO
/// benchmark's values.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(default)]
struct TransformKeys {
    kind: TransformKind,
    high: Option<f64>,
    low: Option<f64>,
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum TransformKind {
    #[default]
    Threshold,
    Lognormal,
}

#[cfg(feature = "serde")]
impl Default for TransformKeys {
    fn default() -> Self {
        Self {
            kind: TransformKind::Threshold,
            high: None,
            low: None,
        }
    }
}

#[cfg(feature = "serde")]
impl From<TransformKeys> for CoefficientTransform {
    fn from(k: TransformKeys) -> Self {
        match k.kind {
            TransformKind::Threshold => Self::Threshold {
                high: k.high.unwrap_or(12.0),
                low: k.low.unwrap_or(3.0),
            },
            TransformKind::Lognormal => Self::LogNormal,
        }
    }
}

/// A random coefficient field: a Gaussian random field and its transform (one table in a config:
/// `kind`, `alpha`, `tau`, `sigma`, and `high`, `low` for a threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Coefficient {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub transform: CoefficientTransform,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub field: GrfParams,
}

impl Default for Coefficient {
    /// The FNO Darcy benchmark's thresholded field.
    fn default() -> Self {
        Self {
            transform: CoefficientTransform::default(),
            field: GrfParams::default(),
        }
    }
}

impl Coefficient {
    /// A coefficient field must be continuous in 2-D (α > 1), and a threshold positive.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        self.field.validate()?;
        let alpha = self.field.alpha;
        require(
            alpha > 1.0,
            "alpha",
            "a number > 1 (the field must be continuous in 2-D)",
            alpha,
        )?;
        if let CoefficientTransform::Threshold { high, low } = self.transform {
            require(positive(high), "high", "a positive number", high)?;
            require(positive(low), "low", "a positive number", low)?;
        }
        Ok(())
    }
}

impl CoefficientTransform {
    pub fn apply(&self, field: &mut Array2<f64>) {
        match *self {
            CoefficientTransform::Threshold { high, low } => {
                field.mapv_inplace(|v| if v >= 0.0 { high } else { low })
            }
            CoefficientTransform::LogNormal => field.mapv_inplace(f64::exp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sample_rng;

    /// The pointwise variance of the 3-D field equals Σ_k λ_k (the covariance at lag 0).
    #[test]
    fn grf_3d_pointwise_variance_matches_the_covariance() {
        let n = 8;
        let params = GrfParams::new(2.0, 3.0, None);
        let sampler = GrfSampler3d::new(n, params).unwrap();
        let s = params.sigma_for_dim(3);
        let four_pi2 = 4.0 * std::f64::consts::PI * std::f64::consts::PI;
        let mut expected = 0.0;
        for p in 1..n * n * n {
            let (i, j, k) = (p / (n * n), (p / n) % n, p % n);
            let (a, b, c) = (wavenumber(i, n), wavenumber(j, n), wavenumber(k, n));
            expected += s * s * (four_pi2 * (a * a + b * b + c * c) + 9.0).powf(-2.0);
        }
        let samples = 300;
        let mut var = 0.0;
        for i in 0..samples {
            let u = sampler.sample(&mut sample_rng(5, i));
            var += u.iter().map(|v| v * v).sum::<f64>() / u.len() as f64;
        }
        var /= samples as f64;
        assert!((var / expected - 1.0).abs() < 0.1, "{var} vs {expected}");
    }

    /// Over many samples, E|û_k|² (with û the DFT divided by n²) equals the covariance eigenvalue λ_k.
    #[test]
    fn grf_sample_spectrum_matches_prescribed_covariance() {
        let n = 32;
        let params = GrfParams::new(2.0, 3.0, None);
        let sampler = GrfSampler2d::new(n, params).unwrap();
        let fwd = FftPlanner::new().plan_fft_forward(n);
        let samples = 400;
        let modes = [
            (1usize, 0usize),
            (0, 1),
            (1, 1),
            (2, 1),
            (3, 0),
            (2, 3),
            (n - 1, 2),
        ];
        let mut power = vec![0.0; modes.len()];
        for s in 0..samples {
            let u = sampler.sample(&mut sample_rng(11, s));
            let mut buf: Vec<Complex64> = u.iter().map(|&v| Complex64::new(v, 0.0)).collect();
            for row in buf.chunks_mut(n) {
                fwd.process(row);
            }
            let mut t = vec![Complex64::default(); n * n];
            transpose(&buf, &mut t, n);
            for row in t.chunks_mut(n) {
                fwd.process(row);
            }
            // t is indexed [ky][kx] after the transpose.
            for (m, &(kx, ky)) in modes.iter().enumerate() {
                let c = t[ky * n + kx] / (n * n) as f64;
                power[m] += c.norm_sqr() / samples as f64;
            }
        }
        for (m, &(kx, ky)) in modes.iter().enumerate() {
            let expected = params.eigenvalue_2d(wavenumber(kx, n), wavenumber(ky, n));
            let ratio = power[m] / expected;
            // |û_k|² is a scaled χ²₂ variable: 400 samples give a relative standard error of 5%.
            assert!(
                (ratio - 1.0).abs() < 0.2,
                "mode ({kx},{ky}): sample power {} vs prescribed {expected} (ratio {ratio})",
                power[m]
            );
        }
    }

    #[test]
    fn grf_mean_mode_is_zero_and_field_is_reproducible() {
        let sampler = GrfSampler2d::new(16, GrfParams::default()).unwrap();
        let a = sampler.sample(&mut sample_rng(1, 5));
        let b = sampler.sample(&mut sample_rng(1, 5));
        assert_eq!(a, b);
        assert!(a.mean().unwrap().abs() < 1e-12);
        assert!(a.iter().any(|&v| v.abs() > 1e-3));
    }

    #[test]
    fn threshold_gives_two_values() {
        let sampler = GrfSampler2d::new(16, GrfParams::default()).unwrap();
        let mut a = sampler.sample(&mut sample_rng(2, 0));
        CoefficientTransform::Threshold {
            high: 12.0,
            low: 3.0,
        }
        .apply(&mut a);
        assert!(a.iter().all(|&v| v == 12.0 || v == 3.0));
        assert!(a.iter().any(|&v| v == 12.0) && a.iter().any(|&v| v == 3.0));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert_eq!(
            GrfSampler2d::new(1, GrfParams::default()).unwrap_err(),
            FieldError::TooSmall { resolution: 1 }
        );
        assert!(matches!(
            GrfSampler2d::new(8, GrfParams::new(-1.0, 3.0, None)),
            Err(FieldError::Invalid(InvalidParam { field, .. })) if field == "alpha"
        ));
    }
}
