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
use super::optim::{Adam, GpError, GpInfo, GpParams};
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

    pub fn kernels(&self) -> (SpectralMixture, SpectralMixture) {
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

/// What [`solve_values`] reports: the conjugate-gradient iterations and the final relative
/// residual of the normal equations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValuesInfo {
    pub iterations: usize,
    pub rel_residual: f64,
    pub converged: bool,
}

/// One axis in the coordinates that whiten the prior and diagonalise the GP Laplacian:
/// `K = LLᵀ`, `L⁻¹K''L⁻ᵀ = QΛQᵀ`, `P = LQ`, so that `K''K⁻¹P = PΛ` and `PPᵀ = K`.
struct EigenAxis {
    p: DMatrix<f64>,
    /// `PᵀP`.
    g: DMatrix<f64>,
    /// `P⁻¹ = QᵀL⁻¹`.
    p_inv: DMatrix<f64>,
    lambda: Vec<f64>,
}

impl EigenAxis {
    fn new(k: &SpectralMixture, n: usize, h: f64, jitter: f64) -> Option<Self> {
        let (kk, kpp) = axis_matrices(k, n, h, jitter);
        let l = kk.cholesky()?.l();
        let x = l.solve_lower_triangular(&kpp)?;
        let t = l.solve_lower_triangular(&x.transpose())?;
        let t = (&t + t.transpose()) * 0.5;
        let eig = t.symmetric_eigen();
        let p = &l * &eig.eigenvectors;
        let g = p.transpose() * &p;
        let l_inv = l.solve_lower_triangular(&DMatrix::identity(n, n))?;
        let p_inv = eig.eigenvectors.transpose() * l_inv;
        Some(Self {
            p,
            g,
            p_inv,
            lambda: eig.eigenvalues.iter().copied().collect(),
        })
    }
}

/// The minimiser of the loss over the grid values for the current kernels and precisions
/// (Gauss–Newton for Allen–Cahn, `iterations` outer steps).
///
/// In the coordinates X of [`EigenAxis`] (`U = P₁XP₂ᵀ`) the prior is `½‖X‖²` and the GP Laplacian
/// is `P₁(D∘X)P₂ᵀ` with `D_ij = λ_i + μ_j`. The normal equations
/// `X + v·Jᵀ(J X − b) + βτ·(boundary) = 0` are solved by Jacobi-preconditioned conjugate
/// gradients, with only `n × n` matrix products (never the `n₁n₂`-square matrix).
pub fn solve_values(
    problem: &Problem2d,
    params: &GpParams,
    state: &State2d,
    iterations: usize,
) -> Option<(Vec<f64>, ValuesInfo)> {
    // Gauss–Newton steps (Allen–Cahn) need not be solved to the end: each is a correction.
    let cg_tolerance = if problem.nonlinearity == 0.0 {
        params.polish_tolerance
    } else {
        params.polish_tolerance.max(params.newton_tolerance)
    };
    let cg_max_iterations = params.polish_max_iterations;
    let (n1, n2) = (problem.n1, problem.n2);
    let (hx, hy) = problem.h();
    let (kx, ky) = state.kernels();
    let ax = EigenAxis::new(&kx, n1, hx, params.jitter)?;
    let ay = EigenAxis::new(&ky, n2, hy, params.jitter)?;
    let len = state.values.len();
    let (tau, v) = (state.values[len - 2].exp(), state.values[len - 1].exp());
    let bt = params.boundary_weight * tau;
    let c = problem.nonlinearity;
    let d = DMatrix::from_fn(n1, n2, |i, j| ax.lambda[i] + ay.lambda[j]);
    let mask = DMatrix::from_fn(
        n1,
        n2,
        |i, j| {
            if problem.on_boundary(i, j) {
                1.0
            } else {
                0.0
            }
        },
    );
    let s = DMatrix::from_row_slice(n1, n2, &problem.source);
    let g = DMatrix::from_row_slice(n1, n2, &problem.boundary);
    // Jacobi preconditioner: the exact diagonal of the Poisson normal operator in these
    // coordinates, 1 + v·D²·G₁ᵢᵢG₂ⱼⱼ + βτ·Σ_boundary P₁²P₂². (Inverting the equation part exactly
    // instead, which the Kronecker structure allows, was worse: it ignores the prior and boundary
    // parts, which dominate some modes, and left condition numbers near 1e10.)
    let boundary_diagonal = ax.p.map(|t| t * t).transpose() * &mask * ay.p.map(|t| t * t);
    let diagonal = DMatrix::from_fn(n1, n2, |i, j| {
        1.0 + v * d[(i, j)].powi(2) * ax.g[(i, i)] * ay.g[(j, j)] + bt * boundary_diagonal[(i, j)]
    });
    let to_u = |x: &DMatrix<f64>| &ax.p * x * ay.p.transpose();
    let from_u = |r: &DMatrix<f64>| ax.p.transpose() * r * &ay.p;
    let mut u = DMatrix::from_row_slice(n1, n2, &state.values[..n1 * n2]);
    let mut x = &ax.p_inv * &u * ay.p_inv.transpose();
    let mut info = ValuesInfo {
        iterations: 0,
        rel_residual: 0.0,
        converged: true,
    };
    for _ in 0..iterations.max(1) {
        // Linearised residual r(X) ≈ J X − b with J X = P₁(D∘X)P₂ᵀ + c·φ'(u)∘(P₁XP₂ᵀ).
        let dphi = u.map(|val| c * (3.0 * val * val - 1.0));
        let rhs_eq = &s - u.map(|val| c * val * (val * val - 1.0)) + dphi.component_mul(&u);
        let jac = |y: &DMatrix<f64>| {
            let mut out = to_u(&d.component_mul(y));
            if c != 0.0 {
                out += dphi.component_mul(&to_u(y));
            }
            out
        };
        let jac_t = |r: &DMatrix<f64>| {
            let mut out = d.component_mul(&from_u(r));
            if c != 0.0 {
                out += from_u(&dphi.component_mul(r));
            }
            out
        };
        let apply = |y: &DMatrix<f64>| {
            let mut out = y + jac_t(&jac(y)) * v;
            out += from_u(&mask.component_mul(&to_u(y))) * bt;
            out
        };
        let precond = |z: &DMatrix<f64>| z.component_div(&diagonal);
        let b = jac_t(&rhs_eq) * v + from_u(&mask.component_mul(&g)) * bt;
        let b_norm = b.norm();
        let mut r = &b - apply(&x);
        let mut z = precond(&r);
        let mut p = z.clone();
        let mut rz = r.dot(&z);
        let mut k = 0;
        let mut rel = r.norm() / b_norm;
        while rel > cg_tolerance && k < cg_max_iterations {
            let ap = apply(&p);
            let alpha = rz / p.dot(&ap);
            x += &p * alpha;
            r -= &ap * alpha;
            z = precond(&r);
            let rz_new = r.dot(&z);
            p = &z + &p * (rz_new / rz);
            rz = rz_new;
            k += 1;
            rel = r.norm() / b_norm;
        }
        info.iterations += k;
        info.rel_residual = rel;
        info.converged &= rel <= cg_tolerance;
        let next = to_u(&x);
        let change = (&next - &u).norm() / next.norm().max(f64::MIN_POSITIVE);
        u = next;
        if c == 0.0 || change <= params.newton_tolerance {
            break;
        }
    }
    let values = (0..n1)
        .flat_map(|i| (0..n2).map(move |j| (i, j)))
        .map(|(i, j)| u[(i, j)])
        .collect();
    Some((values, info))
}

/// Runs the optimisation from u = 0 (the paper's initialisation), calling `observe` after every
/// step (after that step's polish, if any); the same kernel initialisation on both axes.
pub fn solve(
    problem: &Problem2d,
    params: &GpParams,
    mut observe: impl FnMut(usize, &State2d, &Evaluation2d),
) -> Result<(State2d, GpInfo), GpError> {
    params.validate()?;
    let k = SpectralMixture::spread(
        params.components,
        params.max_freq,
        params.length_scale,
        params.envelope,
    );
    let mut state = State2d::new(problem.n1, problem.n2, &k, &k);
    let mut adam = Adam::new(state.values.len(), params.learning_rate);
    let mut info = GpInfo {
        polish_converged: true,
        ..GpInfo::default()
    };
    for step in 0..params.steps {
        adam.set_learning_rate(params.learning_rate_at(step));
        let ev = evaluate(problem, params.jitter, params.boundary_weight, &state)
            .ok_or(GpError::NotPositiveDefinite { step })?;
        if !ev.loss.is_finite() || ev.gradient.iter().any(|g| !g.is_finite()) {
            return Err(GpError::NonFinite { step });
        }
        adam.step(&mut state.values, &ev.gradient);
        info.steps += 1;
        if params.polishes_after(step) {
            let (values, cg) = solve_values(problem, params, &state, params.newton_iterations())
                .ok_or(GpError::NotPositiveDefinite { step })?;
            state.values[..problem.n1 * problem.n2].copy_from_slice(&values);
            info.polishes += 1;
            info.last_polish_iterations = cg.iterations;
            info.last_polish_residual = cg.rel_residual;
            info.polish_converged &= cg.converged;
            // U jumped and the precisions face a new landscape: stale moments (inflated by the
            // first steps' huge residuals) would freeze them.
            let len = state.values.len();
            adam.reset(0..problem.n1 * problem.n2);
            adam.reset(len - 2..len);
        }
        observe(step, &state, &ev);
    }
    Ok((state, info))
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

    #[test]
    fn solved_values_make_the_value_gradient_vanish() {
        let (n1, n2) = (12, 10);
        for c in [0.0, 1.0] {
            let (mut source, mut boundary) = (vec![], vec![]);
            for i in 0..n1 {
                for j in 0..n2 {
                    let (x, y) = (i as f64 / (n1 - 1) as f64, j as f64 / (n2 - 1) as f64);
                    let u = (3.0 * x).sin() * (2.0 * y + 0.5).cos();
                    source.push(-13.0 * u + c * u * (u * u - 1.0));
                    boundary.push(u);
                }
            }
            let problem = Problem2d {
                x: (0.0, 1.0),
                y: (0.0, 1.0),
                n1,
                n2,
                source,
                boundary,
                nonlinearity: c,
            };
            let params = GpParams {
                jitter: 1e-6,
                boundary_weight: 50.0,
                polish_tolerance: 1e-12,
                newton_tolerance: 1e-12,
                ..GpParams::default()
            };
            let k = SpectralMixture::spread(3, 1.0, 0.5, Envelope::Gaussian);
            let mut state = State2d::new(n1, n2, &k, &k);
            let len = state.values.len();
            state.values[len - 1] = 1.0;
            let before = evaluate(&problem, params.jitter, params.boundary_weight, &state).unwrap();
            let (values, info) = solve_values(&problem, &params, &state, 30).unwrap();
            assert!(info.converged, "c = {c}: {info:?}");
            state.values[..n1 * n2].copy_from_slice(&values);
            let after = evaluate(&problem, params.jitter, params.boundary_weight, &state).unwrap();
            let norm = |g: &[f64]| g[..n1 * n2].iter().map(|v| v * v).sum::<f64>().sqrt();
            let (g0, g1) = (norm(&before.gradient), norm(&after.gradient));
            assert!(
                g1 < 1e-6 * g0,
                "c = {c}: value gradient {g0:.3e} before, {g1:.3e} after ({info:?})"
            );
        }
    }
}
