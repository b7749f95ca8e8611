//! The spectral-mixture kernel with a Gaussian envelope, per dimension:
//!
//! `k(d) = Σ_q w_q exp(−d²/(2ℓ_q²)) cos(2π f_q d)`, `d = x − x'`,
//!
//! the covariance whose power spectrum is a mixture of Gaussians at ±f_q (Wilson & Adams 2013).
//! Parameters per component: `log w_q`, `f_q`, `log ℓ_q`. Because k depends on `d` only,
//! `∂k/∂x = k'(d)`, `∂k/∂x' = −k'(d)` and `∂²k/∂x² = k''(d)`; the PDE operators need `k`, `k'` and
//! `k''`, and the gradients need their derivatives with respect to each parameter.

use std::f64::consts::PI;

/// Parameters of a spectral-mixture kernel with Q components.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralMixture {
    pub log_w: Vec<f64>,
    pub freq: Vec<f64>,
    pub log_ls: Vec<f64>,
    pub envelope: Envelope,
}

/// The envelope of every component: the shape of each spectral peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Envelope {
    /// `exp(−d²/(2ℓ²))`: Gaussian peaks (the paper's GM spectrum).
    #[default]
    Gaussian,
    /// Matérn-5/2, `(1 + a|d| + a²d²/3) exp(−a|d|)` with `a = √5/ℓ`: Student-t peaks with heavier
    /// tails (the paper's Student-t mixture). Twice differentiable, which is all the second-order
    /// operators need.
    Matern,
}

impl Envelope {
    /// The envelope's rate `a` for a length-scale ℓ, and `∂a/∂log ℓ`.
    fn rate(self, ls: f64) -> (f64, f64) {
        match self {
            Self::Gaussian => {
                let a = 0.5 / (ls * ls);
                (a, -2.0 * a)
            }
            Self::Matern => {
                let a = 5f64.sqrt() / ls;
                (a, -a)
            }
        }
    }

    /// `[e, e', e'']` at `d` and their derivatives with respect to `a`.
    fn eval(self, a: f64, d: f64) -> ([f64; 3], [f64; 3]) {
        match self {
            Self::Gaussian => {
                let e = (-a * d * d).exp();
                let (e1, e2) = (-2.0 * a * d * e, (4.0 * a * a * d * d - 2.0 * a) * e);
                let d2 = d * d;
                // ∂/∂a of e, e', e'' (e = exp(−a d²)).
                let ea = -d2 * e;
                let e1a = -2.0 * d * e - d2 * e1;
                let e2a = (8.0 * a * d2 - 2.0) * e - d2 * e2;
                ([e, e1, e2], [ea, e1a, e2a])
            }
            Self::Matern => {
                let r = d.abs();
                let x = (-a * r).exp();
                let ar = a * r;
                let e = (1.0 + ar + ar * ar / 3.0) * x;
                let e1 = -(a * a / 3.0) * d * (1.0 + ar) * x;
                let e2 = -(a * a / 3.0) * (1.0 + ar - ar * ar) * x;
                let ea = -(a * r * r / 3.0) * (1.0 + ar) * x;
                let e1a = -(d / 3.0) * (2.0 * a + 2.0 * a * ar - a * ar * ar) * x;
                let e2a = -(1.0 / 3.0)
                    * (2.0 * a + 2.0 * a * ar - 5.0 * a * ar * ar + a * ar * ar * ar)
                    * x;
                ([e, e1, e2], [ea, e1a, e2a])
            }
        }
    }
}

/// Values of one component at a lag: the envelope-cosine product and its first two derivatives,
/// with the sine companions needed for frequency derivatives and the rate derivatives.
#[derive(Debug, Clone, Copy)]
struct Terms {
    g0: f64,
    g1: f64,
    g2: f64,
    p0: f64,
    p1: f64,
    p2: f64,
    /// `∂g0/∂a`, `∂g1/∂a`, `∂g2/∂a`.
    g0a: f64,
    g1a: f64,
    g2a: f64,
}

/// `g = e(d)·cos(bd)` and `p = e(d)·sin(bd)` and their d-derivatives.
fn terms(envelope: Envelope, a: f64, b: f64, d: f64) -> Terms {
    let ([e, e1, e2], [ea, e1a, e2a]) = envelope.eval(a, d);
    let (sn, c) = (b * d).sin_cos();
    Terms {
        g0: e * c,
        g1: e1 * c - b * e * sn,
        g2: e2 * c - 2.0 * b * e1 * sn - b * b * e * c,
        p0: e * sn,
        p1: e1 * sn + b * e * c,
        p2: e2 * sn + 2.0 * b * e1 * c - b * b * e * sn,
        g0a: ea * c,
        g1a: e1a * c - b * ea * sn,
        g2a: e2a * c - 2.0 * b * e1a * sn - b * b * ea * c,
    }
}

/// Number of parameters per component.
pub const PER_COMPONENT: usize = 3;

impl SpectralMixture {
    /// `q` components with equal weights `1/q`, unit length-scales (in units of the domain) and
    /// frequencies spread evenly over `[0, max_freq]`, the paper's initialisation.
    pub fn spread(q: usize, max_freq: f64, length_scale: f64, envelope: Envelope) -> Self {
        Self {
            envelope,
            log_w: vec![(1.0 / q as f64).ln(); q],
            freq: (0..q)
                .map(|i| max_freq * i as f64 / (q.max(2) - 1) as f64)
                .collect(),
            log_ls: vec![length_scale.ln(); q],
        }
    }

    pub fn components(&self) -> usize {
        self.log_w.len()
    }

    /// The envelope rate `a`, `∂a/∂log ℓ` and the angular frequency `b = 2πf` of component `q`.
    fn abc(&self, q: usize) -> (f64, f64, f64) {
        let (a, da) = self.envelope.rate(self.log_ls[q].exp());
        (a, da, 2.0 * PI * self.freq[q])
    }

    /// `(k(d), k'(d), k''(d))`.
    pub fn eval(&self, d: f64) -> (f64, f64, f64) {
        let mut out = (0.0, 0.0, 0.0);
        for q in 0..self.components() {
            let (a, _, b) = self.abc(q);
            let w = self.log_w[q].exp();
            let t = terms(self.envelope, a, b, d);
            out.0 += w * t.g0;
            out.1 += w * t.g1;
            out.2 += w * t.g2;
        }
        out
    }

    /// Adds `c0·∂k(d)/∂θ + c1·∂k'(d)/∂θ + c2·∂k''(d)/∂θ` to `grad`, laid out
    /// `[log w | f | log ℓ]` (Q each).
    pub fn accumulate_grad(&self, d: f64, c0: f64, c1: f64, c2: f64, grad: &mut [f64]) {
        let nq = self.components();
        for q in 0..nq {
            let (a, da, b) = self.abc(q);
            let w = self.log_w[q].exp();
            let t = terms(self.envelope, a, b, d);
            // ∂/∂log w: the component itself.
            grad[q] += w * (c0 * t.g0 + c1 * t.g1 + c2 * t.g2);
            // ∂/∂b: g0 → −d p0, g1 → −(p0 + d p1), g2 → −(2 p1 + d p2); ∂b/∂f = 2π.
            let db0 = -d * t.p0;
            let db1 = -(t.p0 + d * t.p1);
            let db2 = -(2.0 * t.p1 + d * t.p2);
            grad[nq + q] += 2.0 * PI * w * (c0 * db0 + c1 * db1 + c2 * db2);
            grad[2 * nq + q] += da * w * (c0 * t.g0a + c1 * t.g1a + c2 * t.g2a);
        }
    }

    /// The parameters as one vector `[log w | f | log ℓ]`.
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = self.log_w.clone();
        v.extend(&self.freq);
        v.extend(&self.log_ls);
        v
    }

    pub fn from_slice(v: &[f64], envelope: Envelope) -> Self {
        let q = v.len() / PER_COMPONENT;
        Self {
            envelope,
            log_w: v[..q].to_vec(),
            freq: v[q..2 * q].to_vec(),
            log_ls: v[2 * q..].to_vec(),
        }
    }

    /// Mixture weights `w_q`.
    pub fn weights(&self) -> Vec<f64> {
        self.log_w.iter().map(|v| v.exp()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernels() -> [SpectralMixture; 2] {
        [Envelope::Gaussian, Envelope::Matern].map(|envelope| SpectralMixture {
            log_w: vec![-0.3, 0.2],
            freq: vec![1.5, 7.0],
            log_ls: vec![-1.2, -0.4],
            envelope,
        })
    }

    #[test]
    fn distance_derivatives_match_finite_differences() {
        for k in kernels() {
            let h = 1e-5;
            for d in [-0.7, -0.1, 0.0, 0.05, 0.33] {
                let (_, k1, k2) = k.eval(d);
                let fd1 = (k.eval(d + h).0 - k.eval(d - h).0) / (2.0 * h);
                let fd2 = (k.eval(d + h).1 - k.eval(d - h).1) / (2.0 * h);
                assert!(
                    (k1 - fd1).abs() < 1e-6 * (1.0 + k1.abs()),
                    "k' at {d}: {k1} vs {fd1}"
                );
                assert!(
                    (k2 - fd2).abs() < 1e-5 * (1.0 + k2.abs()),
                    "{:?}: k'' at {d}: {k2} vs {fd2}",
                    k.envelope
                );
            }
        }
    }

    #[test]
    fn parameter_derivatives_match_finite_differences() {
        for k in kernels() {
            let theta = k.to_vec();
            for d in [0.0, 0.12, -0.4] {
                for (c0, c1, c2) in [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)] {
                    let mut g = vec![0.0; theta.len()];
                    k.accumulate_grad(d, c0, c1, c2, &mut g);
                    for p in 0..theta.len() {
                        let h = 1e-6;
                        let at = |s: f64| {
                            let mut t = theta.clone();
                            t[p] += s;
                            let (v0, v1, v2) = SpectralMixture::from_slice(&t, k.envelope).eval(d);
                            c0 * v0 + c1 * v1 + c2 * v2
                        };
                        let fd = (at(h) - at(-h)) / (2.0 * h);
                        assert!(
                            (g[p] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                            "{:?}: d = {d}, (c0, c1, c2) = ({c0}, {c1}, {c2}), parameter {p}: {} vs {fd}",
                            k.envelope,
                            g[p]
                        );
                    }
                }
            }
        }
    }
}
