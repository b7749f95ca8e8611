//! GP-HM on a uniform 2-D tensor grid: `𝓛u + c·u(u² − 1) = s` on a rectangle with Dirichlet data,
//! where `𝓛 = a_xx ∂²_x + a_yy ∂²_y + a_x ∂_x + a_y ∂_y` ([`Operator2d`]): the Laplacian (Poisson,
//! Allen–Cahn) or advection `u_t + β u_x` on a space-time grid (y is time).
//!
//! The kernel is a product of one spectral mixture per axis, so `K = K₁ ⊗ K₂` (each factor with
//! its own jitter). With the grid values as an `n₁ × n₂` matrix U and `A = K₁⁻¹ U K₂⁻¹`, every term
//! of `𝓛` applied to the GP mean is `M A N`:
//!
//! - `U_xx = K₁'' A K₂`, `U_yy = K₁ A K₂''`, `U_x = K₁' A K₂`, `U_y = K₁ A K₂'ᵀ`, with
//!   `K'[i, j] = k'(x_i − x_j)` (antisymmetric);
//! - `r = Σ_t α_t M_t A N_t + c·u(u² − 1) − s`;
//! - `L = ½(n₂ log|K₁| + n₁ log|K₂|) + ½⟨U, A⟩ − β(½N_b log τ − ½τ‖U_B − g‖²) − (½N log v − ½v‖r‖²)`.
//!
//! Gradients (derived by matrix calculus; checked against finite differences in the tests), with
//! `P = v r` and `Z = Σ_t α_t M_tᵀ P N_tᵀ`:
//!
//! - `∂L/∂U = A + K₁⁻¹ Z K₂⁻¹ + v c(3u² − 1)∘r + βτ(U − g)` on the boundary;
//! - `∂L/∂K₁ = ½n₂K₁⁻¹ − ½AK₂Aᵀ − K₁⁻¹ZAᵀ`, `∂L/∂K₂ = ½n₁K₂⁻¹ − ½AᵀK₁A − AᵀZK₂⁻¹` (through A);
//! - each term adds `α_t P N_tᵀ Aᵀ` to the adjoint of its `M_t` and `α_t Aᵀ M_tᵀ P` to that of its
//!   `N_t` (transposed for `K₂'ᵀ`);
//!
//! and each adjoint, summed along its diagonals (signed for the odd `K'`), is contracted with that
//! axis' kernel parameter derivatives, as in 1-D.

use super::kernel::{Envelope, SpectralMixture, PER_COMPONENT};
use super::optim::{optimise, GpError, GpInfo, GpParams, Scored, Unknowns};
use nalgebra::DMatrix;

/// The linear part `a_xx u_xx + a_yy u_yy + a_x u_x + a_y u_y` of the PDE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operator2d {
    pub xx: f64,
    pub yy: f64,
    pub x: f64,
    pub y: f64,
}

impl Operator2d {
    pub const LAPLACIAN: Self = Self {
        xx: 1.0,
        yy: 1.0,
        x: 0.0,
        y: 0.0,
    };

    /// `u_t + β u_x` with x the first axis and t the second.
    pub fn advection(beta: f64) -> Self {
        Self {
            xx: 0.0,
            yy: 0.0,
            x: beta,
            y: 1.0,
        }
    }

    /// Whether the operator has only second derivatives (then the exact value step can use the
    /// eigenbasis that diagonalises it).
    fn second_order_only(&self) -> bool {
        self.x == 0.0 && self.y == 0.0
    }
}

/// A 2-D problem on `[x₀, x₁] × [y₀, y₁]` with `n₁ × n₂` grid points (boundaries included).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem2d {
    pub operator: Operator2d,
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

/// `[K, K', K'']` of one axis: `n` points spaced `h`, jitter on K's diagonal.
fn axis_matrices(k: &SpectralMixture, n: usize, h: f64, jitter: f64) -> [DMatrix<f64>; 3] {
    let lags: Vec<(f64, f64, f64)> = (0..n).map(|d| k.eval(d as f64 * h)).collect();
    let kk = DMatrix::from_fn(n, n, |i, j| {
        lags[i.abs_diff(j)].0 + if i == j { jitter } else { 0.0 }
    });
    // k' is odd: k'((i − j)h) = sign(i − j)·k'(|i − j|h).
    let kp = DMatrix::from_fn(n, n, |i, j| {
        let v = lags[i.abs_diff(j)].1;
        if i >= j {
            v
        } else {
            -v
        }
    });
    let kpp = DMatrix::from_fn(n, n, |i, j| lags[i.abs_diff(j)].2);
    [kk, kp, kpp]
}

/// Sums of `g` along its diagonals by lag `|i − j|`; `odd` flips the sign above the diagonal, for
/// the adjoint of an antisymmetric Toeplitz matrix.
fn diagonal_sums(g: &DMatrix<f64>, odd: bool) -> Vec<f64> {
    let n = g.nrows();
    let mut s = vec![0.0; n];
    for j in 0..n {
        for i in 0..n {
            let sign = if odd && i < j { -1.0 } else { 1.0 };
            s[i.abs_diff(j)] += sign * g[(i, j)];
        }
    }
    s
}

/// One term `α M A N` of the operator on the GP mean, with the derivative orders of M (axis 1)
/// and N (axis 2; order 1 is `K₂'ᵀ`).
type Term<'a> = (f64, &'a DMatrix<f64>, usize, &'a DMatrix<f64>, usize);

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
    let m1 = axis_matrices(&kx, n1, hx, jitter);
    let m2 = axis_matrices(&ky, n2, hy, jitter);
    let c1 = m1[0].clone().cholesky()?;
    let c2 = m2[0].clone().cholesky()?;
    let logdet = |c: &nalgebra::Cholesky<f64, nalgebra::Dyn>| -> f64 {
        2.0 * c.l_dirty().diagonal().iter().map(|v| v.ln()).sum::<f64>()
    };
    let (k1inv, k2inv) = (c1.inverse(), c2.inverse());
    let u = DMatrix::from_row_slice(n1, n2, &state.values[..n1 * n2]);
    let a = &k1inv * &u * &k2inv;
    let k2p_t = m2[1].transpose();
    let op = problem.operator;
    let terms: Vec<Term> = [
        (op.xx, &m1[2], 2, &m2[0], 0),
        (op.yy, &m1[0], 0, &m2[2], 2),
        (op.x, &m1[1], 1, &m2[0], 0),
        (op.y, &m1[0], 0, &k2p_t, 1),
    ]
    .into_iter()
    .filter(|t| t.0 != 0.0)
    .collect();
    let cnl = problem.nonlinearity;
    let s = DMatrix::from_row_slice(n1, n2, &problem.source);
    // Products shared by several terms (K₁, K₂ symmetric): K₁A, AK₂ = (K₂Aᵀ)ᵀ.
    let a_t = a.transpose();
    let k2_at = &m2[0] * &a_t;
    let a_k2 = k2_at.transpose();
    let k1_a = &m1[0] * &a;
    let mut r = -&s;
    for &(alpha, m, mo, nn, no) in &terms {
        r += match (mo, no) {
            (_, 0) => m * &a_k2,
            (0, _) => &k1_a * nn,
            _ => m * &a * nn,
        } * alpha;
    }
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

    let p = &r * v;
    let mut z = DMatrix::zeros(n1, n2);
    for &(alpha, m, _, nn, _) in &terms {
        z += m.transpose() * &p * nn.transpose() * alpha;
    }
    let k1inv_z = &k1inv * &z;
    let z_k2inv = &z * &k2inv;
    let mut gu = &a + &k1inv_z * &k2inv;
    for i in 0..n1 {
        for j in 0..n2 {
            let val = u[(i, j)];
            gu[(i, j)] += v * cnl * (3.0 * val * val - 1.0) * r[(i, j)];
            if problem.on_boundary(i, j) {
                gu[(i, j)] += beta * tau * (val - g[(i, j)]);
            }
        }
    }
    // Adjoints of [K, K', K''] per axis, then their diagonal sums contracted with each axis'
    // parameter derivatives; the two axes are independent, so they run in parallel.
    let pc = PER_COMPONENT * state.q;
    let sums = |gs: &[DMatrix<f64>; 3]| {
        [
            diagonal_sums(&gs[0], false),
            diagonal_sums(&gs[1], true),
            diagonal_sums(&gs[2], false),
        ]
    };
    let contract = |kern: &SpectralMixture, h: f64, gs: &[DMatrix<f64>; 3]| {
        let mut grad = vec![0.0; pc];
        let [s0, s1, s2] = sums(gs);
        for (d, ((c0, c1), c2)) in s0.iter().zip(&s1).zip(&s2).enumerate() {
            kern.accumulate_grad(d as f64 * h, *c0, *c1, *c2, &mut grad);
        }
        grad
    };
    let axis_x = || {
        let mut g1 = [
            &k1inv * (0.5 * n2 as f64) - &a * &k2_at * 0.5 - &k1inv_z * &a_t,
            DMatrix::zeros(n1, n1),
            DMatrix::zeros(n1, n1),
        ];
        for &(alpha, _, mo, nn, no) in &terms {
            g1[mo] += if no == 0 {
                &p * &k2_at
            } else {
                &p * nn.transpose() * &a_t
            } * alpha;
        }
        contract(&kx, hx, &g1)
    };
    let axis_y = || {
        let mut g2 = [
            &k2inv * (0.5 * n1 as f64) - &a_t * &k1_a * 0.5 - &a_t * &z_k2inv,
            DMatrix::zeros(n2, n2),
            DMatrix::zeros(n2, n2),
        ];
        for &(alpha, m, mo, _, no) in &terms {
            let adj = if mo == 0 {
                k1_a.transpose() * &p
            } else {
                &a_t * m.transpose() * &p
            } * alpha;
            // N = K₂'ᵀ for the y-derivative: its adjoint is the transpose.
            g2[no] += if no == 1 { adj.transpose() } else { adj };
        }
        contract(&ky, hy, &g2)
    };
    let (gx, gy) = rayon::join(axis_x, axis_y);
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

/// Coordinates X of the grid values, `U = P₁XP₂ᵀ` with `P_k P_kᵀ = K_k`, in which the prior is
/// `½‖X‖²`, and the linear part of the PDE applied to the GP mean, `X ↦ J X` (into grid values).
///
/// - Second-order operators: `K = LLᵀ`, `L⁻¹K''L⁻ᵀ = QΛQᵀ`, `P = LQ`, so `K''K⁻¹P = PΛ` and
///   `J X = P₁(D∘X)P₂ᵀ` with `D_ij = a_xx λ_i + a_yy μ_j`: diagonal in the middle.
/// - With first derivatives (antisymmetric `L⁻¹K'L⁻ᵀ`, no real eigenbasis): `P = L` and
///   `J X = Σ_t α_t (M_t L₁⁻ᵀ) X (L₂⁻¹ N_t)` over the operator's terms.
struct Basis {
    p1: DMatrix<f64>,
    p2: DMatrix<f64>,
    p1_inv: DMatrix<f64>,
    p2_inv: DMatrix<f64>,
    map: LinearMap,
}

enum LinearMap {
    Diagonal(DMatrix<f64>),
    Terms(Vec<(f64, DMatrix<f64>, DMatrix<f64>)>),
}

impl Basis {
    fn new(
        problem: &Problem2d,
        kx: &SpectralMixture,
        ky: &SpectralMixture,
        jitter: f64,
    ) -> Option<Self> {
        let (n1, n2) = (problem.n1, problem.n2);
        let (hx, hy) = problem.h();
        let m1 = axis_matrices(kx, n1, hx, jitter);
        let m2 = axis_matrices(ky, n2, hy, jitter);
        let l1 = m1[0].clone().cholesky()?.l();
        let l2 = m2[0].clone().cholesky()?.l();
        let l1_inv = l1.solve_lower_triangular(&DMatrix::identity(n1, n1))?;
        let l2_inv = l2.solve_lower_triangular(&DMatrix::identity(n2, n2))?;
        let op = problem.operator;
        if op.second_order_only() {
            // L⁻¹K''L⁻ᵀ, symmetrised against rounding, and its eigenbasis.
            // By triangular solves, which keep more digits than products with L⁻¹.
            let eig = |l: &DMatrix<f64>, kpp: &DMatrix<f64>| {
                let x = l.solve_lower_triangular(kpp)?;
                let t = l.solve_lower_triangular(&x.transpose())?;
                Some(((&t + t.transpose()) * 0.5).symmetric_eigen())
            };
            let (e1, e2) = (eig(&l1, &m1[2])?, eig(&l2, &m2[2])?);
            let d = DMatrix::from_fn(n1, n2, |i, j| {
                op.xx * e1.eigenvalues[i] + op.yy * e2.eigenvalues[j]
            });
            Some(Self {
                p1: &l1 * &e1.eigenvectors,
                p2: &l2 * &e2.eigenvectors,
                p1_inv: e1.eigenvectors.transpose() * l1_inv,
                p2_inv: e2.eigenvectors.transpose() * l2_inv,
                map: LinearMap::Diagonal(d),
            })
        } else {
            let k2p_t = m2[1].transpose();
            let terms = [
                (op.xx, &m1[2], &m2[0]),
                (op.yy, &m1[0], &m2[2]),
                (op.x, &m1[1], &m2[0]),
                (op.y, &m1[0], &k2p_t),
            ]
            .into_iter()
            .filter(|t| t.0 != 0.0)
            .map(|(alpha, m, nn)| (alpha, m * l1_inv.transpose(), &l2_inv * nn))
            .collect();
            Some(Self {
                p1: l1,
                p2: l2,
                p1_inv: l1_inv,
                p2_inv: l2_inv,
                map: LinearMap::Terms(terms),
            })
        }
    }

    fn to_u(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        &self.p1 * x * self.p2.transpose()
    }

    fn adjoint_to_x(&self, r: &DMatrix<f64>) -> DMatrix<f64> {
        self.p1.transpose() * r * &self.p2
    }

    fn to_x(&self, u: &DMatrix<f64>) -> DMatrix<f64> {
        &self.p1_inv * u * self.p2_inv.transpose()
    }

    /// `J X` for the linear part.
    fn apply(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        match &self.map {
            LinearMap::Diagonal(d) => self.to_u(&d.component_mul(x)),
            LinearMap::Terms(terms) => {
                let mut out = DMatrix::zeros(self.p1.nrows(), self.p2.nrows());
                for (alpha, b, c) in terms {
                    out += b * x * c * *alpha;
                }
                out
            }
        }
    }

    /// `Jᵀ R`.
    fn apply_t(&self, r: &DMatrix<f64>) -> DMatrix<f64> {
        match &self.map {
            LinearMap::Diagonal(d) => d.component_mul(&self.adjoint_to_x(r)),
            LinearMap::Terms(terms) => {
                let mut out = DMatrix::zeros(self.p1.ncols(), self.p2.ncols());
                for (alpha, b, c) in terms {
                    out += b.transpose() * r * c.transpose() * *alpha;
                }
                out
            }
        }
    }

    /// The diagonal of `JᵀJ`.
    fn normal_diagonal(&self) -> DMatrix<f64> {
        let col_norms = |p: &DMatrix<f64>| -> Vec<f64> {
            (0..p.ncols()).map(|k| p.column(k).norm_squared()).collect()
        };
        match &self.map {
            LinearMap::Diagonal(d) => {
                let (g1, g2) = (col_norms(&self.p1), col_norms(&self.p2));
                DMatrix::from_fn(d.nrows(), d.ncols(), |i, j| {
                    d[(i, j)].powi(2) * g1[i] * g2[j]
                })
            }
            LinearMap::Terms(terms) => {
                // Σ_ts α_t α_s (B_tᵀB_s)_pp (C_s C_tᵀ)_qq.
                let (n1, n2) = (self.p1.ncols(), self.p2.ncols());
                let mut out = DMatrix::zeros(n1, n2);
                for (at, bt, ct) in terms {
                    for (as_, bs, cs) in terms {
                        let left: Vec<f64> =
                            (0..n1).map(|p| bt.column(p).dot(&bs.column(p))).collect();
                        let right: Vec<f64> = (0..n2).map(|q| cs.row(q).dot(&ct.row(q))).collect();
                        for p in 0..n1 {
                            for q in 0..n2 {
                                out[(p, q)] += at * as_ * left[p] * right[q];
                            }
                        }
                    }
                }
                out
            }
        }
    }
}

/// The minimiser of the loss over the grid values for the current kernels and precisions
/// (Gauss–Newton for Allen–Cahn: up to `iterations` outer steps).
///
/// In the coordinates X of [`Basis`] the prior is `½‖X‖²`; the normal equations
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
    let (kx, ky) = state.kernels();
    let basis = Basis::new(problem, &kx, &ky, params.jitter)?;
    let len = state.values.len();
    let (tau, v) = (state.values[len - 2].exp(), state.values[len - 1].exp());
    let bt = params.boundary_weight * tau;
    let c = problem.nonlinearity;
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
    // Jacobi preconditioner: the exact diagonal of the linear problem's normal operator in these
    // coordinates, 1 + v·diag(JᵀJ) + βτ·Σ_boundary P₁²P₂². (Inverting the equation part exactly
    // instead, which the Kronecker structure allows for the Laplacian, was worse: it ignores the
    // prior and boundary parts, which dominate some modes, and left condition numbers near 1e10.)
    let boundary_diagonal = basis.p1.map(|t| t * t).transpose() * &mask * basis.p2.map(|t| t * t);
    let diagonal = basis.normal_diagonal() * v + boundary_diagonal * bt;
    let diagonal = diagonal.map(|t| 1.0 + t);
    let to_u = |x: &DMatrix<f64>| basis.to_u(x);
    let from_u = |r: &DMatrix<f64>| basis.adjoint_to_x(r);
    let mut u = DMatrix::from_row_slice(n1, n2, &state.values[..n1 * n2]);
    let mut x = basis.to_x(&u);
    let mut info = ValuesInfo {
        iterations: 0,
        rel_residual: 0.0,
        converged: true,
    };
    for _ in 0..iterations.max(1) {
        // Linearised residual r(X) ≈ J X − b with J X = (linear part) + c·φ'(u)∘(P₁XP₂ᵀ).
        let dphi = u.map(|val| c * (3.0 * val * val - 1.0));
        let rhs_eq = &s - u.map(|val| c * val * (val * val - 1.0)) + dphi.component_mul(&u);
        let jac = |y: &DMatrix<f64>| {
            let mut out = basis.apply(y);
            if c != 0.0 {
                out += dphi.component_mul(&to_u(y));
            }
            out
        };
        let jac_t = |r: &DMatrix<f64>| {
            let mut out = basis.apply_t(r);
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
    observe: impl FnMut(usize, &State2d, &Evaluation2d),
) -> Result<(State2d, GpInfo), GpError> {
    params.validate()?;
    let k = params.initial_kernel();
    let state = State2d::new(problem.n1, problem.n2, &k, &k);
    let n = problem.n1 * problem.n2;
    optimise(
        params,
        state,
        |state| evaluate(problem, params.jitter, params.boundary_weight, state),
        |state, adam, info| {
            let (values, cg) = solve_values(problem, params, state, params.newton_iterations())?;
            state.values[..n].copy_from_slice(&values);
            info.last_polish_iterations = cg.iterations;
            info.last_polish_residual = cg.rel_residual;
            info.polish_converged &= cg.converged;
            // U jumped and the precisions face a new landscape: stale moments (inflated by the
            // first steps' huge residuals) would freeze them.
            let len = state.values.len();
            adam.reset(0..n);
            adam.reset(len - 2..len);
            Some(())
        },
        observe,
    )
}

impl Unknowns for State2d {
    fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }
}

impl Scored for Evaluation2d {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn gradient(&self) -> &[f64] {
        &self.gradient
    }
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
    let [k1, ..] = axis_matrices(&kx, n1, hx, params.jitter);
    let [k2, ..] = axis_matrices(&ky, n2, hy, params.jitter);
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
        let mixed = Operator2d {
            xx: 0.7,
            yy: -1.3,
            x: 2.1,
            y: 0.4,
        };
        for (c, operator) in [
            (0.0, Operator2d::LAPLACIAN),
            (1.0, Operator2d::LAPLACIAN),
            (0.0, Operator2d::advection(3.0)),
            (1.0, mixed),
        ] {
            let source: Vec<f64> = (0..n1 * n2).map(|p| (p as f64 * 0.41).cos()).collect();
            let boundary: Vec<f64> = (0..n1 * n2).map(|p| (p as f64 * 0.23).sin()).collect();
            let problem = Problem2d {
                operator,
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
                    "c = {c}, {operator:?}, unknown {k}: analytic {gk} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn prediction_at_the_grid_points_returns_the_grid_values() {
        let (n1, n2) = (9, 7);
        let problem = Problem2d {
            operator: Operator2d::LAPLACIAN,
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
        for (c, operator) in [
            (0.0, Operator2d::LAPLACIAN),
            (1.0, Operator2d::LAPLACIAN),
            (0.0, Operator2d::advection(2.0)),
        ] {
            let (mut source, mut boundary) = (vec![], vec![]);
            for i in 0..n1 {
                for j in 0..n2 {
                    let (x, y) = (i as f64 / (n1 - 1) as f64, j as f64 / (n2 - 1) as f64);
                    let u = (3.0 * x).sin() * (2.0 * y + 0.5).cos();
                    // Any source will do: the test is about the minimiser, not the solution.
                    source.push(-13.0 * u + c * u * (u * u - 1.0));
                    boundary.push(u);
                }
            }
            let problem = Problem2d {
                operator,
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
            assert!(info.converged, "c = {c}, {operator:?}: {info:?}");
            state.values[..n1 * n2].copy_from_slice(&values);
            let after = evaluate(&problem, params.jitter, params.boundary_weight, &state).unwrap();
            let norm = |g: &[f64]| g[..n1 * n2].iter().map(|v| v * v).sum::<f64>().sqrt();
            let (g0, g1) = (norm(&before.gradient), norm(&after.gradient));
            // CG solves the normal equations in the basis coordinates to 1e-12; the gradient in
            // grid values is that residual mapped through P⁻¹ (condition ~ jitter^(-1/2)).
            assert!(
                g1 < 1e-5 * g0,
                "c = {c}, {operator:?}: value gradient {g0:.3e} before, {g1:.3e} after ({info:?})"
            );
        }
    }
}
