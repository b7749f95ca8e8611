//! Recycled (deflated) CG for sequences of SPD systems (Saad, Yeung, Erhel and Guyomarc'h 2000).
//!
//! A deflation space W of approximate eigenvectors for the smallest eigenvalues is kept between
//! solves. Each solve starts from the Galerkin projection onto W and keeps its search directions
//! A-orthogonal to W, so CG no longer spends iterations on those eigenvalues. After a solve, W is
//! refreshed by Rayleigh–Ritz on span(W, first search directions) — the smallest Ritz vectors.

use super::cg::cg_iterate;
use super::dense::combine;
use super::{check_inputs, finish, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{axpy, dot, norm2, residual, LinearOperator, Preconditioner};
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

const METHOD: &str = "recycled CG";

/// Parameters of [`RecycledCg`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RecycledCgParams {
    /// Deflation vectors kept between solves.
    pub recycle: usize,
    /// Search directions of each solve kept for the Rayleigh–Ritz update.
    pub stored_directions: usize,
}

impl Default for RecycledCgParams {
    fn default() -> Self {
        Self {
            recycle: 20,
            stored_directions: 40,
        }
    }
}

impl RecycledCgParams {
    pub fn new(recycle: usize) -> Self {
        Self {
            recycle,
            stored_directions: (4 * recycle).max(40),
        }
    }
}

/// A deflated CG solver whose deflation space persists from one [`RecycledCg::solve`] to the next.
#[derive(Debug, Clone)]
pub struct RecycledCg {
    params: RecycledCgParams,
    w: Vec<Vec<f64>>,
}

impl RecycledCg {
    pub fn new(params: RecycledCgParams) -> Self {
        Self {
            params,
            w: Vec::new(),
        }
    }

    pub fn recycle_dim(&self) -> usize {
        self.w.len()
    }

    pub fn reset(&mut self) {
        self.w.clear();
    }

    /// Solves the SPD system `A x = b` from the `x` passed in, then updates the deflation space.
    pub fn solve<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
        &mut self,
        a: &A,
        precond: &M,
        b: &[f64],
        x: &mut [f64],
        params: &SolveParams,
    ) -> Result<SolveInfo, SolveError> {
        let b_norm = check_inputs(METHOD, a, b, x)?;
        if b_norm == 0.0 {
            return Ok(zero_rhs(x));
        }
        let n = a.dim();
        if self.w.first().is_some_and(|w| w.len() != n) {
            self.w.clear();
        }
        let mut info = SolveInfo::default();
        let mut w = std::mem::take(&mut self.w);
        let mut aw: Vec<Vec<f64>> = w
            .iter()
            .map(|wi| {
                let mut out = vec![0.0; n];
                a.apply(wi, &mut out);
                out
            })
            .collect();
        info.matvecs += w.len();
        // The Galerkin matrix WᵀAW; if it is not SPD any more (the matrix changed too much, or
        // W became dependent), the space is dropped and the solve is plain CG.
        let gram = gram_cholesky(&w, &aw);
        if gram.is_none() {
            w.clear();
            aw.clear();
        }
        let mut r = vec![0.0; n];
        residual(a, b, x, &mut r);
        info.matvecs += 1;
        // x ← x + W (WᵀAW)⁻¹ Wᵀ r makes r ⟂ W.
        if let Some(chol) = &gram {
            let mu = chol.solve(&DVector::from_iterator(
                w.len(),
                w.iter().map(|wi| dot(wi, &r)),
            ));
            for ((wi, awi), m) in w.iter().zip(&aw).zip(mu.iter()) {
                axpy(*m, wi, x);
                axpy(-*m, awi, &mut r);
            }
        }
        let store = self.params.stored_directions;
        let mut kept_p: Vec<Vec<f64>> = Vec::with_capacity(store);
        let mut kept_curvature: Vec<f64> = Vec::with_capacity(store);
        cg_iterate(
            METHOD,
            a,
            precond,
            b,
            x,
            &mut r,
            params,
            &mut info,
            |p, z| deflate(p, z, &w, &aw, gram.as_ref()),
            |p, curvature| {
                if kept_p.len() < store {
                    kept_p.push(p.to_vec());
                    kept_curvature.push(curvature);
                }
            },
        )?;
        // Rayleigh–Ritz on span(W, P). The search directions are A-conjugate to each other and
        // to W, so ZᵀAZ = diag(WᵀAW, pᵢᵀApᵢ) is known already; only ZᵀZ costs dot products.
        let k = self.params.recycle;
        if k > 0 && !kept_p.is_empty() {
            let kw = w.len();
            let z: Vec<&[f64]> = w
                .iter()
                .chain(kept_p.iter())
                .map(|v| v.as_slice())
                .collect();
            let s = z.len();
            let mut za = DMatrix::zeros(s, s);
            for i in 0..kw {
                for j in 0..kw {
                    za[(i, j)] = 0.5 * (dot(&w[i], &aw[j]) + dot(&w[j], &aw[i]));
                }
            }
            for (i, c) in kept_curvature.iter().enumerate() {
                za[(kw + i, kw + i)] = *c;
            }
            let mut zz = DMatrix::zeros(s, s);
            for i in 0..s {
                for j in 0..=i {
                    let v = dot(z[i], z[j]);
                    zz[(i, j)] = v;
                    zz[(j, i)] = v;
                }
            }
            if let Some(coeffs) = smallest_generalized(&za, &zz, k) {
                self.w = combine(&z, &coeffs);
                for v in &mut self.w {
                    let nrm = norm2(v);
                    if nrm > 0.0 {
                        v.iter_mut().for_each(|x| *x /= nrm);
                    }
                }
            }
        } else {
            self.w = w;
        }
        finish(METHOD, a, b, x, &mut r, b_norm, params.rtol, info)
    }
}

fn gram_cholesky(w: &[Vec<f64>], aw: &[Vec<f64>]) -> Option<Cholesky<f64, Dyn>> {
    if w.is_empty() {
        return None;
    }
    let k = w.len();
    let g = DMatrix::from_fn(k, k, |i, j| 0.5 * (dot(&w[i], &aw[j]) + dot(&w[j], &aw[i])));
    g.cholesky()
}

/// p ← p − W (WᵀAW)⁻¹ (AW)ᵀ z, keeping p A-orthogonal to W.
fn deflate(
    p: &mut [f64],
    z: &[f64],
    w: &[Vec<f64>],
    aw: &[Vec<f64>],
    gram: Option<&Cholesky<f64, Dyn>>,
) {
    if let Some(chol) = gram {
        let mu = chol.solve(&DVector::from_iterator(
            w.len(),
            aw.iter().map(|awi| dot(awi, z)),
        ));
        for (wi, m) in w.iter().zip(mu.iter()) {
            axpy(-*m, wi, p);
        }
    }
}

/// The `k` eigenvectors with the smallest θ of `G y = θ F y` (G SPD, F symmetric positive
/// semi-definite), through the better-conditioned `F y = μ G y` with μ = 1/θ largest.
fn smallest_generalized(g: &DMatrix<f64>, f: &DMatrix<f64>, k: usize) -> Option<DMatrix<f64>> {
    let l = g.clone().cholesky()?.unpack();
    let l_inv = l.clone().try_inverse()?;
    let m = &l_inv * f * l_inv.transpose();
    let m = (&m + m.transpose()) * 0.5;
    let eig = m.symmetric_eigen();
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let k = k.min(order.len());
    // y = L⁻ᵀ u.
    let y =
        l_inv.transpose() * DMatrix::from_fn(g.nrows(), k, |i, j| eig.eigenvectors[(i, order[j])]);
    y.iter().all(|v| v.is_finite()).then_some(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::cg::cg;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::linalg::{CsrOperator, Jacobi};

    #[test]
    fn recycled_cg_converges_and_reduces_iterations_on_a_sequence() {
        let params = SolveParams::new(1e-9, 5000);
        let mut solver = RecycledCg::new(RecycledCgParams::new(8));
        let (mut plain, mut recycled) = (0, 0);
        for s in 0..6 {
            let a = convection_diffusion(30, 0.002 * s as f64, 0.0);
            let b = rhs(a.rows(), s as f64);
            let jac = Jacobi::new(&a).unwrap();
            let mut x = vec![0.0; a.rows()];
            plain += cg(&CsrOperator::new(&a), &jac, &b, &mut x, &params)
                .unwrap()
                .iterations;
            let mut x = vec![0.0; a.rows()];
            let info = solver
                .solve(&CsrOperator::new(&a), &jac, &b, &mut x, &params)
                .unwrap();
            assert!(info.rel_residual <= 1e-9);
            assert!(true_rel_residual(&a, &b, &x) <= 1e-9);
            recycled += info.iterations;
        }
        assert_eq!(solver.recycle_dim(), 8);
        assert!(
            (recycled as f64) < 0.8 * plain as f64,
            "recycled {recycled} vs plain {plain}"
        );
    }
}
