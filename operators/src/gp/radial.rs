//! Stationary radial kernels `k(x, x') = σ² g(s)` of the scaled squared distance
//! `s = Σ_d (x_d − x'_d)² / ℓ_d²`, for GP regression between fields ([`crate::models::gp`]).
//!
//! Each kernel gives `g(s)`, `dg/ds` (the length-scale gradients follow from it: `∂s/∂log ℓ_d =
//! −2 (x_d − x'_d)²/ℓ_d²`) and, for the rational quadratic, `∂g/∂log α`. Working in `s` rather
//! than `r = √s` keeps every derivative finite at `s = 0`, where the Matérn kernels' `r`-derivatives
//! are not (`dg/ds` of Matérn-1/2 is unbounded there, but every place it is used multiplies it by a
//! squared difference, which [`RadialKernel::dg_ds`] folds in by returning 0 at `s = 0`).

/// A radial kernel's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RadialKernel {
    /// Squared exponential, `exp(−s/2)`.
    Rbf,
    /// Matérn ν = 1/2, `exp(−r)`.
    Matern12,
    /// Matérn ν = 3/2, `(1 + √3 r) exp(−√3 r)`.
    Matern32,
    /// Matérn ν = 5/2, `(1 + √5 r + 5r²/3) exp(−√5 r)`.
    #[default]
    Matern52,
    /// Rational quadratic, `(1 + s/(2α))^(−α)`, with a learned shape α.
    RationalQuadratic,
    /// Inverse multiquadric, `(1 + s)^(−1/2)`.
    InverseMultiquadric,
}

impl RadialKernel {
    pub const ALL: [RadialKernel; 6] = [
        Self::Rbf,
        Self::Matern12,
        Self::Matern32,
        Self::Matern52,
        Self::RationalQuadratic,
        Self::InverseMultiquadric,
    ];

    /// The config name (`"matern52"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rbf => "rbf",
            Self::Matern12 => "matern12",
            Self::Matern32 => "matern32",
            Self::Matern52 => "matern52",
            Self::RationalQuadratic => "rational_quadratic",
            Self::InverseMultiquadric => "inverse_multiquadric",
        }
    }

    /// Whether the kernel has a shape parameter α (learned in log space).
    pub fn has_shape(self) -> bool {
        self == Self::RationalQuadratic
    }

    /// `g(s)`; `alpha` is the shape (read only by the rational quadratic).
    #[inline]
    pub fn g(self, s: f64, alpha: f64) -> f64 {
        match self {
            Self::Rbf => (-0.5 * s).exp(),
            Self::Matern12 => (-s.sqrt()).exp(),
            Self::Matern32 => {
                let a = (3.0 * s).sqrt();
                (1.0 + a) * (-a).exp()
            }
            Self::Matern52 => {
                let a = (5.0 * s).sqrt();
                (1.0 + a + a * a / 3.0) * (-a).exp()
            }
            Self::RationalQuadratic => (1.0 + s / (2.0 * alpha)).powf(-alpha),
            Self::InverseMultiquadric => 1.0 / (1.0 + s).sqrt(),
        }
    }

    /// `dg/ds`, taken as 0 at `s = 0` for Matérn-1/2 (see the module note).
    #[inline]
    pub fn dg_ds(self, s: f64, alpha: f64) -> f64 {
        match self {
            Self::Rbf => -0.5 * (-0.5 * s).exp(),
            Self::Matern12 => {
                if s <= 0.0 {
                    0.0
                } else {
                    let r = s.sqrt();
                    -0.5 * (-r).exp() / r
                }
            }
            Self::Matern32 => -1.5 * (-(3.0 * s).sqrt()).exp(),
            Self::Matern52 => {
                let a = (5.0 * s).sqrt();
                -(5.0 / 6.0) * (1.0 + a) * (-a).exp()
            }
            Self::RationalQuadratic => -0.5 * (1.0 + s / (2.0 * alpha)).powf(-alpha - 1.0),
            Self::InverseMultiquadric => -0.5 * (1.0 + s).powf(-1.5),
        }
    }

    /// `∂g/∂log α` (0 for kernels without a shape).
    #[inline]
    pub fn dg_dlog_alpha(self, s: f64, alpha: f64) -> f64 {
        match self {
            Self::RationalQuadratic => {
                let u = s / (2.0 * alpha);
                let g = (1.0 + u).powf(-alpha);
                alpha * g * (u / (1.0 + u) - u.ln_1p())
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences_and_g_is_one_at_zero() {
        for k in RadialKernel::ALL {
            assert_eq!(k.g(0.0, 1.7), 1.0, "{k:?}");
            for s in [0.03, 0.4, 1.0, 3.5, 12.0] {
                let alpha = 1.7;
                let h = 1e-6 * s;
                let fd = (k.g(s + h, alpha) - k.g(s - h, alpha)) / (2.0 * h);
                let an = k.dg_ds(s, alpha);
                assert!(
                    (fd - an).abs() <= 1e-7 * an.abs().max(1e-3),
                    "{k:?} s={s}: {fd} vs {an}"
                );
                let ha: f64 = 1e-6;
                let fa = (k.g(s, alpha * ha.exp()) - k.g(s, alpha * (-ha).exp())) / (2.0 * ha);
                let aa = k.dg_dlog_alpha(s, alpha);
                assert!(
                    (fa - aa).abs() <= 1e-7 * aa.abs().max(1e-3),
                    "{k:?}: {fa} vs {aa}"
                );
            }
        }
    }
}
