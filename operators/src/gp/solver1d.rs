//! GP-HM on a uniform 1-D grid: `u'' + c·u(u² − 1) = s` on `[x₀, x₁]` with Dirichlet data
//! (`c = 0`: Poisson written as `u'' = s`, i.e. `s = −f` for `−u'' = f`; `c = 1`: Allen–Cahn).
//!
//! Unknowns: the values `u` at the `n` grid points, the kernel parameters θ, and the log precisions
//! `log τ` (boundary) and `log v` (equation). The loss is the negative log joint
//!
//! `L = ½ log|K| + ½ uᵀK⁻¹u − β(½ N_b log τ − ½ τ Σ_b (u_b − g_b)²) − (½ n log v − ½ v Σ_i r_i²)`,
//!
//! with `r = K'' K⁻¹ u + c·u(u² − 1) − s` the equation residual at every grid point (the
//! collocation points) and β the boundary weight. On a uniform grid K and K'' are symmetric
//! Toeplitz: solves, the log-determinant and the diagonal sums of K⁻¹ cost O(n²) (Levinson,
//! Gohberg–Semencul), and the matrix adjoints `∂L/∂K` and `∂L/∂K''`, summed along diagonals, are
//! contracted with the kernel's parameter derivatives at the n lags. A step is O(n² + nQ).

use super::kernel::{Envelope, SpectralMixture, PER_COMPONENT};
use super::optim::{optimise, Scored, Unknowns};
pub use super::optim::{Adam, GpError, GpInfo, GpParams};
use super::toeplitz::{apply_inverse, inverse_diagonal_sums, outer_diagonal_sums, SymToeplitz};

/// A 1-D problem: the grid, the source `s` at the grid points, the boundary values, and `c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem1d {
    pub x0: f64,
    pub x1: f64,
    /// Grid points, both ends included.
    pub n: usize,
    /// `s(x_i)`.
    pub source: Vec<f64>,
    /// `u(x₀)` and `u(x₁)`.
    pub boundary: (f64, f64),
    /// Coefficient of the Allen–Cahn term `u(u² − 1)`; 0 for Poisson.
    pub nonlinearity: f64,
}

impl Problem1d {
    pub fn h(&self) -> f64 {
        (self.x1 - self.x0) / (self.n - 1) as f64
    }

    pub fn grid(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.x0 + i as f64 * self.h()).collect()
    }
}

/// The unknowns, flattened `[u (n) | θ (3Q) | log τ | log v]` for the optimiser.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub values: Vec<f64>,
    pub n: usize,
    pub envelope: Envelope,
}

impl State {
    pub fn new(n: usize, kernel: &SpectralMixture) -> Self {
        let mut values = vec![0.0; n];
        values.extend(kernel.to_vec());
        values.extend([0.0, 0.0]);
        Self {
            values,
            n,
            envelope: kernel.envelope,
        }
    }

    pub fn u(&self) -> &[f64] {
        &self.values[..self.n]
    }

    pub fn kernel(&self) -> SpectralMixture {
        SpectralMixture::from_slice(&self.values[self.n..self.values.len() - 2], self.envelope)
    }

    fn log_tau(&self) -> f64 {
        self.values[self.values.len() - 2]
    }

    fn log_v(&self) -> f64 {
        self.values[self.values.len() - 1]
    }
}

/// The loss and its gradient at `state`; also the equation and boundary misfits.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub loss: f64,
    pub gradient: Vec<f64>,
    /// Σ r_i² and Σ (u_b − g_b)².
    pub equation_misfit: f64,
    pub boundary_misfit: f64,
}

/// Evaluates the loss and its analytic gradient in O(n²) (Levinson and Gohberg–Semencul; see
/// [`super::toeplitz`]).
pub fn evaluate(problem: &Problem1d, params: &GpParams, state: &State) -> Option<Evaluation> {
    let n = problem.n;
    let h = problem.h();
    let kern = state.kernel();
    let nq = kern.components();
    let lags: Vec<(f64, f64, f64)> = (0..n).map(|d| kern.eval(d as f64 * h)).collect();
    let mut k_row: Vec<f64> = lags.iter().map(|l| l.0).collect();
    k_row[0] += params.jitter;
    let k = SymToeplitz { t: k_row };
    let kpp = SymToeplitz {
        t: lags.iter().map(|l| l.2).collect(),
    };
    let u = state.u();
    let fac = k.factor(&[u])?;
    let alpha = &fac.solutions[0];
    let uxx = kpp.matvec(alpha);
    let c = problem.nonlinearity;
    let r: Vec<f64> = (0..n)
        .map(|i| uxx[i] + c * u[i] * (u[i] * u[i] - 1.0) - problem.source[i])
        .collect();
    let e: f64 = r.iter().map(|v| v * v).sum();
    let (bi, bg) = ([0, n - 1], [problem.boundary.0, problem.boundary.1]);
    let b: f64 = bi.iter().zip(bg).map(|(&i, g)| (u[i] - g).powi(2)).sum();
    let (tau, v) = (state.log_tau().exp(), state.log_v().exp());
    let beta = params.boundary_weight;
    let nb = 2.0;
    let quad: f64 = u.iter().zip(alpha).map(|(a, b)| a * b).sum();
    let loss = 0.5 * fac.log_det + 0.5 * quad
        - beta * (0.5 * nb * state.log_tau() - 0.5 * tau * b)
        - (0.5 * n as f64 * state.log_v() - 0.5 * v * e);

    // ∂L/∂u = α + v K⁻¹K''r + v c(3u² − 1)r + βτ(u − g) on the boundary.
    let z = apply_inverse(&fac.first_column, &kpp.matvec(&r));
    let mut gradient: Vec<f64> = (0..n)
        .map(|i| alpha[i] + v * z[i] + v * c * (3.0 * u[i] * u[i] - 1.0) * r[i])
        .collect();
    for (&i, g) in bi.iter().zip(bg) {
        gradient[i] += beta * tau * (u[i] - g);
    }
    // Matrix adjoints summed along diagonals: ∂L/∂K = ½K⁻¹ − ½ααᵀ − v zαᵀ, ∂L/∂K'' = v rαᵀ.
    let s_inv = inverse_diagonal_sums(&fac.first_column);
    let s_aa = outer_diagonal_sums(alpha, alpha);
    let s_za = outer_diagonal_sums(&z, alpha);
    let s_ra = outer_diagonal_sums(&r, alpha);
    let mut gtheta = vec![0.0; PER_COMPONENT * nq];
    for d in 0..n {
        let sk = 0.5 * s_inv[d] - 0.5 * s_aa[d] - v * s_za[d];
        kern.accumulate_grad(d as f64 * h, sk, 0.0, v * s_ra[d], &mut gtheta);
    }
    gradient.extend(gtheta);
    gradient.push(-beta * (0.5 * nb - 0.5 * tau * b));
    gradient.push(-(0.5 * n as f64 - 0.5 * v * e));
    Some(Evaluation {
        loss,
        gradient,
        equation_misfit: e,
        boundary_misfit: b,
    })
}

/// The GP's conditional mean at `points` given the grid values.
pub fn predict(
    problem: &Problem1d,
    params: &GpParams,
    state: &State,
    points: &[f64],
) -> Option<Vec<f64>> {
    let n = problem.n;
    let h = problem.h();
    let kern = state.kernel();
    let mut row: Vec<f64> = (0..n).map(|d| kern.eval(d as f64 * h).0).collect();
    row[0] += params.jitter;
    let fac = SymToeplitz { t: row }.factor(&[state.u()])?;
    let alpha = &fac.solutions[0];
    let grid = problem.grid();
    Some(
        points
            .iter()
            .map(|&x| {
                grid.iter()
                    .zip(alpha)
                    .map(|(&xj, a)| kern.eval(x - xj).0 * a)
                    .sum()
            })
            .collect(),
    )
}

/// The minimiser of the loss over the grid values for the current kernel and precisions. The
/// values are whitened, `u = Lw` with `K = LLᵀ`, so the problem is the least-squares problem
/// `min ½‖w‖² + ½v‖r(w)‖² + ½βτ‖u_b − g‖²`, solved by Householder QR (never the normal equations,
/// whose condition number is the square). For Allen–Cahn, `r` is linearised about the current
/// values and the step repeated (Gauss–Newton) `iterations` times.
pub fn solve_values(
    problem: &Problem1d,
    params: &GpParams,
    state: &State,
    iterations: usize,
) -> Option<Vec<f64>> {
    use nalgebra::{DMatrix, DVector};
    let n = problem.n;
    let h = problem.h();
    let kern = state.kernel();
    let lags: Vec<(f64, f64, f64)> = (0..n).map(|d| kern.eval(d as f64 * h)).collect();
    let k = DMatrix::from_fn(n, n, |i, j| {
        lags[i.abs_diff(j)].0 + if i == j { params.jitter } else { 0.0 }
    });
    let kpp = DMatrix::from_fn(n, n, |i, j| lags[i.abs_diff(j)].2);
    let l = k.cholesky()?.l();
    // A = K'' L⁻ᵀ, so that K''K⁻¹u = A w.
    let a = l.solve_lower_triangular(&kpp)?.transpose();
    let (tau, v) = (state.log_tau().exp(), state.log_v().exp());
    let (sv, sb) = (v.sqrt(), (params.boundary_weight * tau).sqrt());
    let c = problem.nonlinearity;
    let mut u = DVector::from_column_slice(state.u());
    let mut w = l.solve_lower_triangular(&u)?;
    let rows = 2 * n + 2;
    for _ in 0..iterations.max(1) {
        let mut m = DMatrix::zeros(rows, n);
        let mut rhs = DVector::zeros(rows);
        for i in 0..n {
            m[(i, i)] = 1.0;
        }
        // Linearised residual: r ≈ J w − (J w₀ − r₀), J = A + c·diag(3u² − 1)L.
        let mut jac = a.clone();
        if c != 0.0 {
            for i in 0..n {
                let d = c * (3.0 * u[i] * u[i] - 1.0);
                for j in 0..=i {
                    jac[(i, j)] += d * l[(i, j)];
                }
            }
        }
        let jw = &jac * &w;
        let aw = &a * &w;
        for i in 0..n {
            let r0 = aw[i] + c * u[i] * (u[i] * u[i] - 1.0) - problem.source[i];
            rhs[n + i] = sv * (jw[i] - r0);
            for j in 0..n {
                m[(n + i, j)] = sv * jac[(i, j)];
            }
        }
        for (row, (bi, g)) in [(0, problem.boundary.0), (n - 1, problem.boundary.1)]
            .into_iter()
            .enumerate()
        {
            rhs[2 * n + row] = sb * g;
            for j in 0..=bi {
                m[(2 * n + row, j)] = sb * l[(bi, j)];
            }
        }
        let qr = m.qr();
        let qtb = qr.q().transpose() * rhs;
        w = qr.r().solve_upper_triangular(&qtb)?;
        let next = &l * &w;
        let change = (&next - &u).norm() / next.norm().max(f64::MIN_POSITIVE);
        u = next;
        if c == 0.0 || change <= params.newton_tolerance {
            break;
        }
    }
    Some(u.iter().copied().collect())
}

/// Runs the optimisation from the paper's initialisation (u = 0), calling `observe(step, state,
/// evaluation)` after every step (after that step's polish, if any). Returns the final state.
pub fn solve(
    problem: &Problem1d,
    params: &GpParams,
    observe: impl FnMut(usize, &State, &Evaluation),
) -> Result<(State, GpInfo), GpError> {
    params.validate()?;
    let state = State::new(problem.n, &params.initial_kernel());
    optimise(
        params,
        state,
        |state| evaluate(problem, params, state),
        |state, _adam, _info| {
            let values = solve_values(problem, params, state, params.newton_iterations())?;
            state.values[..problem.n].copy_from_slice(&values);
            // Unlike 2-D, Adam's moments are kept: resetting them here made sin(500x) diverge
            // (0.49 against 4.3e-3 at 40 000 steps).
            Some(())
        },
        observe,
    )
}

impl Unknowns for State {
    fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }
}

impl Scored for Evaluation {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn gradient(&self) -> &[f64] {
        &self.gradient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn problem(n: usize, nonlinearity: f64) -> (Problem1d, impl Fn(f64) -> f64) {
        let u = |x: f64| (2.0 * PI * x + 1.0).sin();
        let uxx = |x: f64| -4.0 * PI * PI * (2.0 * PI * x + 1.0).sin();
        let h = 1.0 / (n - 1) as f64;
        let source = (0..n)
            .map(|i| {
                let x = i as f64 * h;
                uxx(x) + nonlinearity * u(x) * (u(x) * u(x) - 1.0)
            })
            .collect();
        (
            Problem1d {
                x0: 0.0,
                x1: 1.0,
                n,
                source,
                boundary: (u(0.0), u(1.0)),
                nonlinearity,
            },
            u,
        )
    }

    #[test]
    fn loss_gradient_matches_finite_differences_for_every_group() {
        for c in [0.0, 1.0] {
            let (p, _) = problem(12, c);
            let params = GpParams {
                components: 3,
                max_freq: 3.0,
                length_scale: 0.5,
                ..GpParams::default()
            };
            let kernel = SpectralMixture::spread(3, 3.0, 0.5, Envelope::Gaussian);
            let mut state = State::new(p.n, &kernel);
            for (i, v) in state.values.iter_mut().enumerate().take(p.n) {
                *v = (i as f64 * 0.37).sin();
            }
            let len = state.values.len();
            state.values[len - 2] = 0.3;
            state.values[len - 1] = -0.2;
            let ev = evaluate(&p, &params, &state).unwrap();
            // u values, log w, f, log ℓ, log τ, log v.
            let probes = [0, 5, 12, 15, 18, len - 2, len - 1];
            for &k in &probes {
                let hstep = 1e-6 * (1.0 + state.values[k].abs());
                let at = |s: f64| {
                    let mut t = state.clone();
                    t.values[k] += s;
                    evaluate(&p, &params, &t).unwrap().loss
                };
                let fd = (at(hstep) - at(-hstep)) / (2.0 * hstep);
                let g = ev.gradient[k];
                assert!(
                    (g - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "c = {c}, parameter {k}: analytic {g} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn low_frequency_poisson_reaches_1e_4() {
        let (p, u) = problem(100, 0.0);
        let params = GpParams {
            components: 10,
            max_freq: 5.0,
            length_scale: 1.0,
            steps: 20_000,
            ..GpParams::default()
        };
        let (state, _) = solve(&p, &params, |_, _, _| {}).unwrap();
        let xs: Vec<f64> = (0..200).map(|i| i as f64 / 199.0).collect();
        let pred = predict(&p, &params, &state, &xs).unwrap();
        let (mut e, mut nrm) = (0.0, 0.0);
        for (x, v) in xs.iter().zip(&pred) {
            e += (v - u(*x)).powi(2);
            nrm += u(*x).powi(2);
        }
        let rel = (e / nrm).sqrt();
        assert!(rel < 1e-4, "relative L2 error {rel:.3e}");
    }

    #[test]
    fn solved_values_make_the_value_gradient_vanish() {
        for c in [0.0, 1.0] {
            let (p, _) = problem(40, c);
            let params = GpParams {
                components: 4,
                max_freq: 3.0,
                length_scale: 0.3,
                jitter: 1e-6,
                ..GpParams::default()
            };
            let mut state = State::new(
                p.n,
                &SpectralMixture::spread(4, 3.0, 0.3, Envelope::Gaussian),
            );
            let len = state.values.len();
            state.values[len - 1] = 2.0;
            let before = evaluate(&p, &params, &state).unwrap();
            let values = solve_values(&p, &params, &state, 30).unwrap();
            state.values[..p.n].copy_from_slice(&values);
            let after = evaluate(&p, &params, &state).unwrap();
            let norm = |g: &[f64]| g[..p.n].iter().map(|v| v * v).sum::<f64>().sqrt();
            let (g0, g1) = (norm(&before.gradient), norm(&after.gradient));
            assert!(
                g1 < 1e-6 * g0,
                "c = {c}: value gradient {g0:.3e} before, {g1:.3e} after"
            );
            assert!(after.loss < before.loss);
        }
    }

    #[test]
    fn spurious_components_are_pruned_on_a_single_frequency() {
        // u = sin(2π·3x): of components started at 0, 1.5, …, 6 cycles, the ones that do not move
        // to 3 should lose orders of magnitude of weight.
        let n = 60;
        let u = |x: f64| (6.0 * PI * x).sin();
        let h = 1.0 / (n - 1) as f64;
        let p = Problem1d {
            x0: 0.0,
            x1: 1.0,
            n,
            source: (0..n).map(|i| -36.0 * PI * PI * u(i as f64 * h)).collect(),
            boundary: (u(0.0), u(1.0)),
            nonlinearity: 0.0,
        };
        let params = GpParams {
            components: 5,
            max_freq: 6.0,
            length_scale: 1.0,
            steps: 20_000,
            ..GpParams::default()
        };
        let (state, _) = solve(&p, &params, |_, _, _| {}).unwrap();
        let k = state.kernel();
        let (best, _) = k
            .log_w
            .iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (i, &w)| if w > b.1 { (i, w) } else { b });
        assert!((k.freq[best] - 3.0).abs() < 0.05, "kernel {k:?}");
        let w = k.weights();
        for q in 0..5 {
            if (k.freq[q] - 3.0).abs() > 0.5 {
                assert!(
                    w[q] < 1e-2 * w[best],
                    "component {q} at {:.2} cycles kept weight {:.2e} (dominant {:.2e})",
                    k.freq[q],
                    w[q],
                    w[best]
                );
            }
        }
    }
}
