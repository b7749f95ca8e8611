//! Smoothed-aggregation algebraic multigrid (Vaněk, Mandel and Brezina 1996), as a solver and as a
//! preconditioner.
//!
//! Setup, level by level: symmetric strength of connection |aᵢⱼ| ≥ θ·√|aᵢᵢaⱼⱼ|; standard
//! three-pass aggregation; a tentative prolongator T that injects the constant vector per
//! aggregate; Jacobi smoothing P = (I − ω D⁻¹A)·T with ω = 4/3 divided by a power-iteration
//! estimate of ρ(D⁻¹A); Galerkin coarse operator PᵀAP. The
//! coarsest level is factorised densely (LU). The cycle is a V-cycle with symmetric Gauss–Seidel
//! (or damped Jacobi) pre- and post-smoothing, which keeps it a symmetric operator for CG.

use crate::krylov::{check_inputs, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{
    diagonal, norm2, residual, BadDiagonal, Csr32, LinearOperator, Preconditioner,
};
use nalgebra::{DMatrix, DVector, Dyn, LU};
use sprs::CsMat;
use std::sync::Mutex;
use thiserror::Error;

/// Smoother used on every level but the coarsest.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Smoother {
    /// One forward then one backward Gauss–Seidel sweep (symmetric).
    #[default]
    SymmetricGaussSeidel,
    /// Damped Jacobi with the given weight (2/3 is the usual choice).
    Jacobi(f64),
}

/// Parameters of [`Amg::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AmgParams {
    /// Strength threshold θ; 0 treats every connection as strong (pyamg's default for SA).
    pub strength: f64,
    /// Stop coarsening when a level has at most this many rows.
    pub max_coarse: usize,
    pub max_levels: usize,
    pub smoother: Smoother,
    /// Smoother applications before and after the coarse correction.
    pub sweeps: usize,
}

impl Default for AmgParams {
    fn default() -> Self {
        Self {
            strength: 0.0,
            max_coarse: 64,
            max_levels: 12,
            smoother: Smoother::SymmetricGaussSeidel,
            sweeps: 1,
        }
    }
}

impl AmgParams {
    pub fn validate(&self) -> Result<(), AmgError> {
        let bad = |reason: String| Err(AmgError::BadParams { reason });
        if !(0.0..1.0).contains(&self.strength) {
            return bad(format!("strength must be in [0, 1), got {}", self.strength));
        }
        if self.max_coarse < 1 || self.max_levels < 1 || self.sweeps < 1 {
            return bad("max_coarse, max_levels and sweeps must be at least 1".into());
        }
        if let Smoother::Jacobi(w) = self.smoother {
            if !(w > 0.0 && w <= 1.0) {
                return bad(format!("Jacobi smoother weight must be in (0, 1], got {w}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AmgError {
    #[error("AMG: {0}")]
    Diagonal(#[from] BadDiagonal),
    #[error("AMG: the coarsest operator ({rows}×{rows}) is singular")]
    SingularCoarse { rows: usize },
    #[error("AMG: needs a square CSR matrix")]
    BadMatrix,
    #[error("AMG: invalid parameter: {reason}")]
    BadParams { reason: String },
}

/// Size of one level of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelInfo {
    pub rows: usize,
    pub nonzeros: usize,
}

/// The hierarchy's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct AmgInfo {
    pub levels: Vec<LevelInfo>,
    /// Σ nnz(A_l) / nnz(A_0): the cost of a V-cycle relative to a fine-grid mat-vec.
    pub operator_complexity: f64,
}

/// One level of the hierarchy, its matrices in the compact form the cycle reads.
struct Level {
    a: Csr32<'static>,
    inv_diag: Vec<f64>,
    p: Csr32<'static>,
    r: Csr32<'static>,
}

/// Scratch vectors for one V-cycle: per level the residual, and the coarse right-hand side and
/// correction.
struct Work {
    res: Vec<Vec<f64>>,
    rhs: Vec<Vec<f64>>,
    sol: Vec<Vec<f64>>,
}

/// A smoothed-aggregation AMG hierarchy.
pub struct Amg {
    levels: Vec<Level>,
    coarse: LU<f64, Dyn, Dyn>,
    params: AmgParams,
    info: AmgInfo,
    work: Mutex<Option<Work>>,
}

impl std::fmt::Debug for Amg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amg").field("info", &self.info).finish()
    }
}

impl Amg {
    /// Builds the hierarchy for `a` (expected symmetric positive definite or close to it).
    pub fn new(a: &CsMat<f64>, params: AmgParams) -> Result<Self, AmgError> {
        params.validate()?;
        if !a.is_csr() || a.rows() != a.cols() {
            return Err(AmgError::BadMatrix);
        }
        let mut levels = Vec::new();
        let mut infos = Vec::new();
        let mut current = a.clone();
        while current.rows() > params.max_coarse && levels.len() + 1 < params.max_levels {
            let diag = diagonal(&current)?;
            let aggregates = aggregate(&current, &diag, params.strength);
            let n_agg = aggregates.iter().max().map_or(0, |m| m + 1);
            // No coarsening progress: stop here and solve this level directly.
            if n_agg == 0 || n_agg * 10 > current.rows() * 9 {
                break;
            }
            let a32 = Csr32::owned(&current);
            let p = smoothed_prolongator(&current, &a32, &diag, &aggregates, n_agg);
            let r: CsMat<f64> = p.transpose_view().to_csr();
            let ap = spgemm(&current, &p);
            let coarse = spgemm(&r, &ap);
            levels.push(Level {
                a: a32,
                inv_diag: diag.iter().map(|d| 1.0 / d).collect(),
                p: Csr32::owned(&p),
                r: Csr32::owned(&r),
            });
            infos.push(LevelInfo {
                rows: current.rows(),
                nonzeros: current.nnz(),
            });
            current = coarse;
        }
        let rows = current.rows();
        let mut dense = DMatrix::zeros(rows, rows);
        for (v, (i, j)) in current.iter() {
            dense[(i, j)] += *v;
        }
        let coarse = dense.lu();
        if !coarse.is_invertible() {
            return Err(AmgError::SingularCoarse { rows });
        }
        infos.push(LevelInfo {
            rows,
            nonzeros: current.nnz(),
        });
        let total: usize = infos.iter().map(|l| l.nonzeros).sum();
        let info = AmgInfo {
            operator_complexity: total as f64 / infos[0].nonzeros.max(1) as f64,
            levels: infos,
        };
        Ok(Self {
            levels,
            coarse,
            params,
            info,
            work: Mutex::new(None),
        })
    }

    pub fn info(&self) -> &AmgInfo {
        &self.info
    }

    fn new_work(&self) -> Work {
        // R is coarse × fine, so its rows are the next level's size.
        let sizes: Vec<usize> = self.levels.iter().map(|l| l.a.rows()).collect();
        let coarse_sizes: Vec<usize> = self.levels.iter().map(|l| l.r.rows()).collect();
        Work {
            res: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            rhs: coarse_sizes.iter().map(|&n| vec![0.0; n]).collect(),
            sol: coarse_sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One V-cycle for `A x = b` from the `x` passed in.
    pub fn vcycle(&self, b: &[f64], x: &mut [f64]) {
        let mut guard = self.work.lock().ok();
        let mut local;
        let work = match guard.as_deref_mut() {
            Some(slot) => slot.get_or_insert_with(|| self.new_work()),
            None => {
                local = self.new_work();
                &mut local
            }
        };
        self.cycle(0, b, x, work);
    }

    fn cycle(&self, l: usize, b: &[f64], x: &mut [f64], work: &mut Work) {
        if l == self.levels.len() {
            let sol = self
                .coarse
                .solve(&DVector::from_column_slice(b))
                .expect("coarse LU checked invertible at setup");
            x.copy_from_slice(sol.as_slice());
            return;
        }
        let level = &self.levels[l];
        let mut res = std::mem::take(&mut work.res[l]);
        let mut rhs = std::mem::take(&mut work.rhs[l]);
        let mut sol = std::mem::take(&mut work.sol[l]);
        for _ in 0..self.params.sweeps {
            smooth(level, b, x, &mut res, self.params.smoother);
        }
        level.a.residual_serial(b, x, &mut res);
        level.r.matvec_serial(&res, &mut rhs);
        sol.fill(0.0);
        self.cycle(l + 1, &rhs, &mut sol, work);
        level.p.matvec_serial(&sol, &mut res);
        for (xi, ci) in x.iter_mut().zip(&res) {
            *xi += ci;
        }
        for _ in 0..self.params.sweeps {
            smooth(level, b, x, &mut res, self.params.smoother);
        }
        work.res[l] = res;
        work.rhs[l] = rhs;
        work.sol[l] = sol;
    }

    /// Stand-alone AMG: V-cycles until the true relative residual is at most `params.rtol`.
    pub fn solve<A: LinearOperator + ?Sized>(
        &self,
        a: &A,
        b: &[f64],
        x: &mut [f64],
        params: &SolveParams,
    ) -> Result<SolveInfo, SolveError> {
        const METHOD: &str = "AMG";
        let b_norm = check_inputs(METHOD, a, b, x)?;
        if b_norm == 0.0 {
            return Ok(zero_rhs(x));
        }
        let n = b.len();
        let mut info = SolveInfo::default();
        let mut r = vec![0.0; n];
        let mut e = vec![0.0; n];
        loop {
            residual(a, b, x, &mut r);
            info.matvecs += 1;
            let rel = norm2(&r) / b_norm;
            if params.history && info.iterations > 0 {
                info.history.push(rel);
            }
            if !rel.is_finite() {
                return Err(SolveError::Breakdown {
                    method: METHOD,
                    iteration: info.iterations,
                    quantity: "‖b − Ax‖/‖b‖",
                    value: rel,
                    hint: "; AMG as a solver needs an SPD-like matrix",
                });
            }
            info.rel_residual = rel;
            if rel <= params.rtol || info.iterations >= params.max_iter {
                break;
            }
            e.fill(0.0);
            self.vcycle(&r, &mut e);
            info.precond_applies += 1;
            for (xi, ei) in x.iter_mut().zip(&e) {
                *xi += ei;
            }
            info.iterations += 1;
        }
        info.converged = info.rel_residual <= params.rtol;
        if info.converged {
            Ok(info)
        } else {
            Err(SolveError::NoConvergence {
                method: METHOD,
                info: Box::new(info),
                rtol: params.rtol,
            })
        }
    }
}

impl Preconditioner for Amg {
    /// One V-cycle from a zero initial guess.
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        z.fill(0.0);
        self.vcycle(r, z);
    }
}

/// One smoothing step. Both smoothers are symmetric, so the V-cycle is too.
fn smooth(level: &Level, b: &[f64], x: &mut [f64], scratch: &mut [f64], how: Smoother) {
    let a = &level.a;
    let n = b.len();
    // x_i ← x_i + (b_i − A_i·x)/a_ii: the same Gauss–Seidel update as excluding the diagonal from
    // the sum, without a branch in the row loop.
    let relax_row = |x: &mut [f64], i: usize| {
        let (idx, val) = a.row(i);
        let ax: f64 = idx.iter().zip(val).map(|(&j, &v)| v * x[j as usize]).sum();
        x[i] += (b[i] - ax) * level.inv_diag[i];
    };
    match how {
        Smoother::SymmetricGaussSeidel => {
            for i in 0..n {
                relax_row(x, i);
            }
            for i in (0..n).rev() {
                relax_row(x, i);
            }
        }
        Smoother::Jacobi(w) => {
            a.residual_serial(b, x, scratch);
            for i in 0..n {
                x[i] += w * level.inv_diag[i] * scratch[i];
            }
        }
    }
}

/// Standard aggregation (as in pyamg): (1) a node whose strong neighbours are all free seeds an
/// aggregate with them; (2) a remaining node joins the aggregate of a neighbour placed in pass 1;
/// (3) what is left forms aggregates with its free neighbours.
fn aggregate(a: &CsMat<f64>, diag: &[f64], theta: f64) -> Vec<usize> {
    const FREE: usize = usize::MAX;
    let n = a.rows();
    let indptr = a.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (a.indices(), a.data());
    let strong = |i: usize, p: usize| {
        let j = indices[p];
        j != i && data[p] != 0.0 && data[p].abs() >= theta * (diag[i] * diag[j]).abs().sqrt()
    };
    let mut agg = vec![FREE; n];
    let mut pass1 = vec![false; n];
    let mut next = 0;
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        let range = indptr[i]..indptr[i + 1];
        if range
            .clone()
            .filter(|&p| strong(i, p))
            .all(|p| agg[indices[p]] == FREE)
        {
            agg[i] = next;
            pass1[i] = true;
            for p in range.filter(|&p| strong(i, p)) {
                agg[indices[p]] = next;
                pass1[indices[p]] = true;
            }
            next += 1;
        }
    }
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        if let Some(p) = (indptr[i]..indptr[i + 1]).find(|&p| strong(i, p) && pass1[indices[p]]) {
            agg[i] = agg[indices[p]];
        }
    }
    for i in 0..n {
        if agg[i] != FREE {
            continue;
        }
        agg[i] = next;
        for p in indptr[i]..indptr[i + 1] {
            if strong(i, p) && agg[indices[p]] == FREE {
                agg[indices[p]] = next;
            }
        }
        next += 1;
    }
    agg
}

/// ρ(D⁻¹A) by power iteration from a fixed pseudo-random vector, capped by the Gershgorin bound
/// maxᵢ Σⱼ |aᵢⱼ| / |aᵢᵢ| (power iteration approaches ρ from below, Gershgorin bounds it above).
fn spectral_radius_estimate(a: &CsMat<f64>, a32: &Csr32, diag: &[f64]) -> f64 {
    let n = a.rows();
    let indptr = a.indptr();
    let indptr = indptr.raw_storage();
    let gershgorin = (0..n)
        .map(|i| {
            a.data()[indptr[i]..indptr[i + 1]]
                .iter()
                .map(|v| v.abs())
                .sum::<f64>()
                / diag[i].abs()
        })
        .fold(0.0, f64::max);
    let mut v: Vec<f64> = (0..n)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 500_001.5) - 1.0)
        .collect();
    let mut w = vec![0.0; n];
    let mut rho = 0.0;
    for _ in 0..20 {
        let nv = norm2(&v);
        if nv == 0.0 {
            break;
        }
        a32.matvec_serial(&v, &mut w);
        for (wi, di) in w.iter_mut().zip(diag) {
            *wi /= di;
        }
        rho = norm2(&w) / nv;
        std::mem::swap(&mut v, &mut w);
    }
    if rho > 0.0 {
        rho.min(gershgorin)
    } else {
        gershgorin
    }
}

/// `A·B` for CSR matrices by Gustavson's row-by-row product with a dense accumulator; rows come
/// out with sorted columns. (sprs' general product spent most of the AMG setup.)
fn spgemm(a: &CsMat<f64>, b: &CsMat<f64>) -> CsMat<f64> {
    let (m, n) = (a.rows(), b.cols());
    let (a_ptr, a_idx, a_val) = (a.indptr(), a.indices(), a.data());
    let a_ptr = a_ptr.raw_storage();
    let (b_ptr, b_idx, b_val) = (b.indptr(), b.indices(), b.data());
    let b_ptr = b_ptr.raw_storage();
    let mut indptr = Vec::with_capacity(m + 1);
    indptr.push(0);
    let mut indices = Vec::with_capacity(a.nnz() * 2);
    let mut data = Vec::with_capacity(a.nnz() * 2);
    let mut acc = vec![0.0; n];
    let mut seen = vec![usize::MAX; n];
    let mut cols: Vec<usize> = Vec::new();
    for i in 0..m {
        cols.clear();
        for p in a_ptr[i]..a_ptr[i + 1] {
            let (k, v) = (a_idx[p], a_val[p]);
            for q in b_ptr[k]..b_ptr[k + 1] {
                let j = b_idx[q];
                if seen[j] != i {
                    seen[j] = i;
                    acc[j] = 0.0;
                    cols.push(j);
                }
                acc[j] += v * b_val[q];
            }
        }
        cols.sort_unstable();
        for &j in &cols {
            indices.push(j);
            data.push(acc[j]);
        }
        indptr.push(indices.len());
    }
    CsMat::new((m, n), indptr, indices, data)
}

/// P = (I − ω D⁻¹A)·T for the tentative prolongator T of the aggregates.
fn smoothed_prolongator(
    a: &CsMat<f64>,
    a32: &Csr32,
    diag: &[f64],
    agg: &[usize],
    n_agg: usize,
) -> CsMat<f64> {
    let n = a.rows();
    let mut size = vec![0usize; n_agg];
    for &g in agg {
        size[g] += 1;
    }
    let t = CsMat::new(
        (n, n_agg),
        (0..=n).collect(),
        agg.to_vec(),
        agg.iter().map(|&g| 1.0 / (size[g] as f64).sqrt()).collect(),
    );
    let rho = spectral_radius_estimate(a, a32, diag);
    let omega = 4.0 / 3.0 / rho;
    let mut at = spgemm(a, &t);
    for (i, mut row) in at.outer_iterator_mut().enumerate() {
        let s = omega / diag[i];
        for (_, v) in row.iter_mut() {
            *v *= s;
        }
    }
    &t - &at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::cg;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::linalg::CsrOperator;

    /// Error reduction per V-cycle on −Δu = 0 from a random start, measured in the A-norm proxy ‖e‖.
    fn vcycle_factor(m: usize) -> f64 {
        let a = convection_diffusion(m, 0.0, 0.0);
        let amg = Amg::new(&a, AmgParams::default()).unwrap();
        let n = a.rows();
        let b = vec![0.0; n];
        let mut x: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
            .collect();
        let mut last = norm2(&x);
        let mut factor = 0.0;
        for _ in 0..8 {
            amg.vcycle(&b, &mut x);
            let now = norm2(&x);
            factor = now / last;
            last = now;
        }
        factor
    }

    #[test]
    fn vcycle_reduces_error_by_a_grid_independent_factor() {
        let small = vcycle_factor(32);
        let large = vcycle_factor(96);
        assert!(small < 0.35 && large < 0.35, "factors {small} and {large}");
        assert!(large < small * 1.6 + 0.05, "factors {small} and {large}");
    }

    #[test]
    fn amg_solves_and_preconditions_cg() {
        let a = convection_diffusion(60, 0.0, 0.0);
        let b = rhs(a.rows(), 0.4);
        let amg = Amg::new(&a, AmgParams::default()).unwrap();
        assert!(amg.info().levels.len() >= 3, "{:?}", amg.info());
        assert!(amg.info().operator_complexity < 2.0);
        let op = CsrOperator::new(&a);
        let mut x = vec![0.0; a.rows()];
        let info = amg
            .solve(&op, &b, &mut x, &SolveParams::new(1e-8, 100))
            .unwrap();
        assert!(true_rel_residual(&a, &b, &x) <= 1e-8);
        assert!(info.iterations < 30, "{}", info.iterations);
        let mut y = vec![0.0; a.rows()];
        let pcg = cg(&op, &amg, &b, &mut y, &SolveParams::new(1e-8, 100)).unwrap();
        assert!(true_rel_residual(&a, &b, &y) <= 1e-8);
        assert!(pcg.iterations <= 15, "{}", pcg.iterations);
        let jac = Amg::new(
            &a,
            AmgParams {
                smoother: Smoother::Jacobi(2.0 / 3.0),
                ..AmgParams::default()
            },
        )
        .unwrap();
        let mut z = vec![0.0; a.rows()];
        cg(&op, &jac, &b, &mut z, &SolveParams::new(1e-8, 100)).unwrap();
        assert!(true_rel_residual(&a, &b, &z) <= 1e-8);
    }

    #[test]
    fn sparse_product_matches_sprs() {
        let a = convection_diffusion(9, 0.3, 0.2);
        let b = convection_diffusion(9, -0.1, -0.4);
        let ours = spgemm(&a, &b);
        let theirs: CsMat<f64> = &a * &b;
        assert_eq!(ours.indptr(), theirs.indptr());
        assert_eq!(ours.indices(), theirs.indices());
        for (x, y) in ours.data().iter().zip(theirs.data()) {
            assert!((x - y).abs() <= 1e-14 * x.abs().max(1.0));
        }
    }

    #[test]
    fn amg_rejects_zero_diagonal_and_bad_params() {
        let mut a = convection_diffusion(12, 0.0, 0.0);
        a.set(5, 5, 0.0);
        assert!(matches!(
            Amg::new(&a, AmgParams::default()),
            Err(AmgError::Diagonal(BadDiagonal { row: 5, .. }))
        ));
        assert!(matches!(
            Amg::new(
                &convection_diffusion(4, 0.0, 0.0),
                AmgParams {
                    sweeps: 0,
                    ..AmgParams::default()
                }
            ),
            Err(AmgError::BadParams { .. })
        ));
    }
}
