//! GP-HM on a uniform 2-D tensor grid: `Δu + c·u(u² − 1) = s` on a rectangle with Dirichlet data.
//!
//! The kernel is a product of one spectral mixture per axis, so `K = K₁ ⊗ K₂` (each factor with
//! its own jitter). With the grid values as an `n₁ × n₂` matrix U and `A = K₁⁻¹ U K₂⁻¹`:
//!
//! - `U_xx = K₁'' A K₂`, `U_yy = K₁ A K₂''`, `r = U_xx + U_yy + c·u(u² − 1) − s`;
//! - `L = ½(n₂ log|K₁| + n₁ log|K₂|) + ½⟨U, A⟩ − β(½N_b log τ − ½τ‖U_B − g‖²) − (½N log v − ½v‖r‖²)`.
//!
//! Gradients (derived by matrix calculus; checked against finite differences in the tests):
//!
//! - `∂L/∂U = A + v(K₁⁻¹K₁''r + rK₂''K₂⁻¹) + v c(3u² − 1)∘r + βτ(U − g)` on the boundary;
//! - `∂L/∂K₁ = ½n₂K₁⁻¹ − ½AK₂Aᵀ − v(K₁⁻¹K₁''r)K₂Aᵀ`, `∂L/∂K₁'' = v rK₂Aᵀ`;
//! - `∂L/∂K₂ = ½n₁K₂⁻¹ − ½AᵀK₁A − vAᵀK₁(rK₂''K₂⁻¹)`, `∂L/∂K₂'' = v AᵀK₁r`;
//!
//! and each adjoint, summed along its diagonals, is contracted with that axis' kernel parameter
//! derivatives, as in 1-D.

use super::kernel::{Envelope, SpectralMixture, PER_COMPONENT};
use super::solver1d::{Adam, GpError, GpParams};
use nalgebra::DMatrix;

/// A 2-D problem on `[x₀, x₁] × [y₀, y₁]` with `n₁ × n₂` grid points (boundaries included).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem2d {
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub n1: usize,
    pub n2: usize,
    /// `s` at the grid points, row-major `[i][j]` (i along x).
    pub source: Vec<f64>,
    /// Dirichlet data at every grid point; only the boundary ring is used.
    pub boundary: Vec<f64>,
    pub nonlinearity: f64,
}

impl Problem2d {
    fn h(&self) -> (f64, f64) {
        (
            (self.x.1 - self.x.0) / (self.n1 - 1) as f64,
            (self.y.1 - self.y.0) / (self.n2 - 1) as f64,
        )
    }

    fn on_boundary(&self, i: usize, j: usize) -> bool {
        i == 0 || j == 0 || i == self.n1 - 1 || j == self.n2 - 1
    }
}

/// Unknowns `[U (n₁n₂) | θx (3Q) | θy (3Q) | log τ | log v]`.
#[derive(Debug, Clone, PartialEq)]
pub struct State2d {
    pub values: Vec<f64>,
    pub n: usize,
    pub q: usize,
    pub envelope: Envelope,
}

impl State2d {
    pub fn new(n1: usize, n2: usize, kx: &SpectralMixture, ky: &SpectralMixture) -> Self {
        assert_eq!(kx.components(), ky.components(), "one Q for both axes");
        let mut values = vec![0.0; n1 * n2];
        values.extend(kx.to_vec());
        values.extend(ky.to_vec());
        values.extend([0.0, 0.0]);
        Self {
            values,
            n: n1 * n2,
            q: kx.components(),
            envelope: kx.envelope,
        }
    }

    fn kernels(&self) -> (SpectralMixture, SpectralMixture) {
        let p = PER_COMPONENT * self.q;
        (
            SpectralMixture::from_slice(&self.values[self.n..self.n + p], self.envelope),
            SpectralMixture::from_slice(&self.values[self.n + p..self.n + 2 * p], self.envelope),
        )
    }
}

/// The loss, its gradient and the misfits.
#[derive(Debug, Clone)]
pub struct Evaluation2d {
    pub loss: f64,
    pub gradient: Vec<f64>,
    pub equation_misfit: f64,
    pub boundary_misfit: f64,
}

/// `(K, K'')` of one axis: `n` points spaced `h`, jitter on K's diagonal.
fn axis_matrices(
    k: &SpectralMixture,
    n: usize,
    h: f64,
    jitter: f64,
) -> (DMatrix<f64>, DMatrix<f64>) {
    let lags: Vec<(f64, f64, f64)> = (0..n).map(|d| k.eval(d as f64 * h)).collect();
    let kk = DMatrix::from_fn(n, n, |i, j| {
        lags[i.abs_diff(j)].0 + if i == j { jitter } else { 0.0 }
    });
    let kpp = DMatrix::from_fn(n, n, |i, j| lags[i.abs_diff(j)].2);
    (kk, kpp)
}

fn diagonal_sums(g: &DMatrix<f64>) -> Vec<f64> {
    let n = g.nrows();
    let mut s = vec![0.0; n];
    for j in 0..n {
        for i in 0..n {
            s[i.abs_diff(j)] += g[(i, j)];
        }
    }
    s
}

/// Evaluates the loss and its analytic gradient (dense per-axis algebra, O(n₁³ + n₂³ + n₁n₂(n₁ + n₂))).
pub fn evaluate(
    problem: &Problem2d,
    jitter: f64,
    boundary_weight: f64,
    state: &State2d,
) -> Option<Evaluation2d> {
    let (n1, n2) = (problem.n1, problem.n2);
    let (hx, hy) = problem.h();
    let (kx, ky) = state.kernels();
    let (k1, k1pp) = axis_matrices(&kx, n1, hx, jitter);
    let (k2, k2pp) = axis_matrices(&ky, n2, hy, jitter);
    let c1 = k1.clone().cholesky()?;
    let c2 = k2.clone().cholesky()?;
    let logdet = |c: &nalgebra::Cholesky<f64, nalgebra::Dyn>| -> f64 {
        2.0 * c.l_dirty().diagonal().iter().map(|v| v.ln()).sum::<f64>()
    };
    let (k1inv, k2inv) = (c1.inverse(), c2.inverse());
    let u = DMatrix::from_row_slice(n1, n2, &state.values[..n1 * n2]);
    let a = &k1inv * &u * &k2inv;
    let uxx = &k1pp * &a * &k2;
    let uyy = &k1 * &a * &k2pp;
    let cnl = problem.nonlinearity;
    let s = DMatrix::from_row_slice(n1, n2, &problem.source);
    let mut r = &uxx + &uyy - &s;
    for i in 0..n1 {
        for j in 0..n2 {
            let v = u[(i, j)];
            r[(i, j)] += cnl * v * (v * v - 1.0);
        }
    }
    let e = r.norm_squared();
    let g = DMatrix::from_row_slice(n1, n2, &problem.boundary);
    let mut b = 0.0;
    let mut nb = 0.0;
    for i in 0..n1 {
        for j in 0..n2 {
            if problem.on_boundary(i, j) {
                b += (u[(i, j)] - g[(i, j)]).powi(2);
                nb += 1.0;
            }
        }
    }
    let len = state.values.len();
    let (log_tau, log_v) = (state.values[len - 2], state.values[len - 1]);
    let (tau, v) = (log_tau.exp(), log_v.exp());
    let beta = boundary_weight;
    let n = (n1 * n2) as f64;
    let loss = 0.5 * (n2 as f64 * logdet(&c1) + n1 as f64 * logdet(&c2)) + 0.5 * u.dot(&a)
        - beta * (0.5 * nb * log_tau - 0.5 * tau * b)
        - (0.5 * n * log_v - 0.5 * v * e);

    let zx = &k1inv * (&k1pp * &r);
    let zy = &r * &k2pp * &k2inv;
    let mut gu = &a + (&zx + &zy) * v;
    for i in 0..n1 {
        for j in 0..n2 {
            let val = u[(i, j)];
            gu[(i, j)] += v * cnl * (3.0 * val * val - 1.0) * r[(i, j)];
            if problem.on_boundary(i, j) {
                gu[(i, j)] += beta * tau * (val - g[(i, j)]);
            }
        }
    }
    let g1 =
        &k1inv * (0.5 * n2 as f64) - &a * &k2 * a.transpose() * 0.5 - &zx * &k2 * a.transpose() * v;
    let g1pp = &r * &k2 * a.transpose() * v;
    let g2 =
        &k2inv * (0.5 * n1 as f64) - a.transpose() * &k1 * &a * 0.5 - a.transpose() * &k1 * &zy * v;
    let g2pp = a.transpose() * &k1 * &r * v;
    let p = PER_COMPONENT * state.q;
    let mut gx = vec![0.0; p];
    let mut gy = vec![0.0; p];
    let (s1, s1pp) = (diagonal_sums(&g1), diagonal_sums(&g1pp));
    for d in 0..n1 {
        kx.accumulate_grad(d as f64 * hx, s1[d], s1pp[d], &mut gx);
    }
    let (s2, s2pp) = (diagonal_sums(&g2), diagonal_sums(&g2pp));
    for d in 0..n2 {
        ky.accumulate_grad(d as f64 * hy, s2[d], s2pp[d], &mut gy);
    }
    let mut gradient: Vec<f64> = Vec::with_capacity(len);
    for i in 0..n1 {
        for j in 0..n2 {
            gradient.push(gu[(i, j)]);
        }
    }
    gradient.extend(gx);
    gradient.extend(gy);
    gradient.push(-beta * (0.5 * nb - 0.5 * tau * b));
    gradient.push(-(0.5 * n - 0.5 * v * e));
    Some(Evaluation2d {
        loss,
        gradient,
        equation_misfit: e,
        boundary_misfit: b,
    })
}

/// Runs the optimisation from u = 0 (the paper's initialisation), calling `observe` after every
/// step; the same kernel initialisation on both axes.
pub fn solve(
    problem: &Problem2d,
    params: &GpParams,
    mut observe: impl FnMut(usize, &State2d, &Evaluation2d),
) -> Result<State2d, GpError> {
    params.validate()?;
    let k = SpectralMixture::spread(
        params.components,
        params.max_freq,
        params.length_scale,
        params.envelope,
    );
    let mut state = State2d::new(problem.n1, problem.n2, &k, &k);
    let mut adam = Adam::new(state.values.len(), params.learning_rate);
    for step in 0..params.steps {
        adam.set_learning_rate(params.learning_rate_at(step));
        let ev = evaluate(problem, params.jitter, params.boundary_weight, &state)
            .ok_or(GpError::NotPositiveDefinite { step })?;
        if !ev.loss.is_finite() || ev.gradient.iter().any(|g| !g.is_finite()) {
            return Err(GpError::NonFinite { step });
        }
        adam.step(&mut state.values, &ev.gradient);
        observe(step, &state, &ev);
    }
    Ok(state)
}

/// The GP mean on the tensor grid `xs × ys` (row-major, x first): `K(xs, X) A K(Y, ys)`.
pub fn predict(
    problem: &Problem2d,
    params: &GpParams,
    state: &State2d,
    xs: &[f64],
    ys: &[f64],
) -> Option<Vec<f64>> {
    let (n1, n2) = (problem.n1, problem.n2);
    let (hx, hy) = problem.h();
    let (kx, ky) = state.kernels();
    let (k1, _) = axis_matrices(&kx, n1, hx, params.jitter);
    let (k2, _) = axis_matrices(&ky, n2, hy, params.jitter);
    let u = DMatrix::from_row_slice(n1, n2, &state.values[..n1 * n2]);
    let a = k1.cholesky()?.solve(&u);
    let a = k2.cholesky()?.solve(&a.transpose()).transpose();
    let gx = DMatrix::from_fn(xs.len(), n1, |i, j| {
        kx.eval(xs[i] - (problem.x.0 + j as f64 * hx)).0
    });
    let gy = DMatrix::from_fn(n2, ys.len(), |i, j| {
        ky.eval((problem.y.0 + i as f64 * hy) - ys[j]).0
    });
    let pred = gx * a * gy;
    Some(
        (0..xs.len())
            .flat_map(|i| (0..ys.len()).map(move |j| (i, j)))
            .map(|(i, j)| pred[(i, j)])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_gradient_matches_finite_differences_for_every_group() {
        let (n1, n2) = (6, 5);
        for c in [0.0, 1.0] {
            let source: Vec<f64> = (0..n1 * n2).map(|p| (p as f64 * 0.41).cos()).collect();
            let boundary: Vec<f64> = (0..n1 * n2).map(|p| (p as f64 * 0.23).sin()).collect();
            let problem = Problem2d {
                x: (0.0, 1.0),
                y: (0.0, 2.0),
                n1,
                n2,
                source,
                boundary,
                nonlinearity: c,
            };
            let kx = SpectralMixture::spread(2, 2.0, 0.4, Envelope::Gaussian);
            let ky = SpectralMixture::spread(2, 1.5, 0.6, Envelope::Gaussian);
            let mut state = State2d::new(n1, n2, &kx, &ky);
            for (p, v) in state.values.iter_mut().enumerate().take(n1 * n2) {
                *v = (p as f64 * 0.29).sin();
            }
            let len = state.values.len();
            state.values[len - 2] = 0.2;
            state.values[len - 1] = -0.3;
            let (jitter, beta) = (1e-3, 5.0);
            let ev = evaluate(&problem, jitter, beta, &state).unwrap();
            // U (interior and boundary), θx (log w, f, log ℓ), θy, log τ, log v.
            let n = n1 * n2;
            let probes = [
                0,
                8,
                14,
                n,
                n + 2,
                n + 5,
                n + 6,
                n + 9,
                n + 11,
                len - 2,
                len - 1,
            ];
            for &k in &probes {
                let h = 1e-6 * (1.0 + state.values[k].abs());
                let at = |d: f64| {
                    let mut t = state.clone();
                    t.values[k] += d;
                    evaluate(&problem, jitter, beta, &t).unwrap().loss
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                let gk = ev.gradient[k];
                assert!(
                    (gk - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "c = {c}, unknown {k}: analytic {gk} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn prediction_at_the_grid_points_returns_the_grid_values() {
        let (n1, n2) = (9, 7);
        let problem = Problem2d {
            x: (0.0, 1.0),
            y: (-1.0, 1.0),
            n1,
            n2,
            source: vec![0.0; n1 * n2],
            boundary: vec![0.0; n1 * n2],
            nonlinearity: 0.0,
        };
        let params = GpParams {
            components: 3,
            max_freq: 2.0,
            length_scale: 0.3,
            jitter: 1e-10,
            ..GpParams::default()
        };
        let k = SpectralMixture::spread(3, 2.0, 0.3, Envelope::Gaussian);
        let mut state = State2d::new(n1, n2, &k, &k);
        for (p, v) in state.values.iter_mut().enumerate().take(n1 * n2) {
            *v = (p as f64 * 0.53).sin();
        }
        let xs: Vec<f64> = (0..n1).map(|i| i as f64 / (n1 - 1) as f64).collect();
        let ys: Vec<f64> = (0..n2)
            .map(|j| -1.0 + 2.0 * j as f64 / (n2 - 1) as f64)
            .collect();
        let pred = predict(&problem, &params, &state, &xs, &ys).unwrap();
        for (p, v) in pred.iter().enumerate() {
            assert!(
                (v - state.values[p]).abs() < 1e-5,
                "point {p}: {v} vs {}",
                state.values[p]
            );
        }
    }
}
