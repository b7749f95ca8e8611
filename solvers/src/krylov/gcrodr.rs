//! GCRO-DR(m, k) (Parks, de Sturler, Mackey, Johnson and Maiti 2006): restarted GMRES that keeps
//! k harmonic Ritz vectors of each cycle as a recycle space, across cycles *and across systems*.
//!
//! Preconditioning is on the right: the method runs on Â = A·M⁻¹ and every correction d is applied
//! as x ← x + M⁻¹d. The recycle space lives in that preconditioned space; within a solve
//! C = Â·U with orthonormal C. When a new system arrives, `[Q, R] = qr(Â_new·U)`, C ← Q and
//! U ← U·R⁻¹, and the initial residual is projected onto the complement of C.
//!
//! With k = 0 every cycle is a GMRES(m) cycle, and the iterates match [`super::gmres`].

use super::dense::{combine, cross_dots, harmonic_ritz, right_solve_upper, thin_qr};
use super::gmres::{givens_step, orthogonalize, solve_upper, Orthogonalization};
use super::{check_inputs, finish, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{axpy, dot, norm2, residual, LinearOperator, Preconditioner};
use nalgebra::DMatrix;

const METHOD: &str = "GCRO-DR";

/// Parameters of [`GcroDr`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GcroDrParams {
    /// Vectors per cycle, recycled ones included (the m of GCRO-DR(m, k)).
    pub restart: usize,
    /// Harmonic Ritz vectors kept (the k); 0 gives plain GMRES(m).
    pub recycle: usize,
    pub orthogonalization: Orthogonalization,
    pub update: RecycleUpdate,
}

/// When the recycle space is recomputed from harmonic Ritz vectors (in a config:
/// `recycle_update = "cycle"` or `"system"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RecycleUpdate {
    /// After every cycle, as in Parks et al. Each update costs about 2·m·k vector operations.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "cycle"))]
    EveryCycle,
    /// After the first cycle of a solve that starts without one, and after the last cycle of each
    /// solve; the cycles in between keep U and C fixed. Cheaper per iteration when the systems of a
    /// sequence are close enough that the carried space is already good.
    #[cfg_attr(feature = "serde", serde(rename = "system"))]
    PerSystem,
}

impl Default for GcroDrParams {
    /// The SKR paper's choice: m = 40, k = 20.
    fn default() -> Self {
        Self {
            restart: 40,
            recycle: 20,
            orthogonalization: Orthogonalization::Mgs,
            update: RecycleUpdate::EveryCycle,
        }
    }
}

impl GcroDrParams {
    pub fn new(restart: usize, recycle: usize) -> Self {
        Self {
            restart,
            recycle,
            ..Self::default()
        }
    }

    pub fn with_update(self, update: RecycleUpdate) -> Self {
        Self { update, ..self }
    }

    pub fn validate(&self) -> Result<(), SolveError> {
        if self.restart < 1 || self.recycle >= self.restart {
            return Err(SolveError::BadParams {
                method: METHOD,
                reason: format!(
                    "need restart ≥ 1 and recycle < restart, got restart {} and recycle {}",
                    self.restart, self.recycle
                ),
            });
        }
        Ok(())
    }
}

/// A GCRO-DR solver whose recycle space persists from one [`GcroDr::solve`] to the next.
#[derive(Debug, Clone)]
pub struct GcroDr {
    params: GcroDrParams,
    /// The recycle space U (in the preconditioned space), kept between solves.
    u: Vec<Vec<f64>>,
}

/// Â = A·M⁻¹ with its scratch vector.
struct RightPrecond<'a, A: ?Sized, M: ?Sized> {
    a: &'a A,
    m: &'a M,
    tmp: Vec<f64>,
}

impl<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized> RightPrecond<'_, A, M> {
    fn apply(&mut self, v: &[f64], out: &mut [f64], info: &mut SolveInfo) {
        self.m.apply(v, &mut self.tmp);
        self.a.apply(&self.tmp, out);
        info.matvecs += 1;
        info.precond_applies += 1;
    }

    /// x ← x + M⁻¹ d.
    fn correct(&mut self, d: &[f64], x: &mut [f64], info: &mut SolveInfo) {
        self.m.apply(d, &mut self.tmp);
        axpy(1.0, &self.tmp, x);
        info.precond_applies += 1;
    }
}

impl GcroDr {
    pub fn new(params: GcroDrParams) -> Result<Self, SolveError> {
        params.validate()?;
        Ok(Self {
            params,
            u: Vec::new(),
        })
    }

    pub fn params(&self) -> &GcroDrParams {
        &self.params
    }

    /// Number of recycled vectors currently held.
    pub fn recycle_dim(&self) -> usize {
        self.u.len()
    }

    /// Forgets the recycle space; the next solve starts like GMRES.
    pub fn reset(&mut self) {
        self.u.clear();
    }

    /// Solves `A x = b` starting from the `x` passed in, using and then updating the recycle space.
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
        if self.u.first().is_some_and(|u| u.len() != n) {
            self.u.clear();
        }
        let m = self.params.restart.min(n);
        let k_max = self.params.recycle.min(m.saturating_sub(1));
        let ortho = self.params.orthogonalization;
        let target = params.rtol * b_norm;
        let mut info = SolveInfo::default();
        let mut op = RightPrecond {
            a,
            m: precond,
            tmp: vec![0.0; n],
        };
        let mut r = vec![0.0; n];
        residual(a, b, x, &mut r);
        info.matvecs += 1;

        // Carry the recycle space over to this matrix: C = qr(Â U), U ← U R⁻¹.
        let mut u = std::mem::take(&mut self.u);
        let mut c: Vec<Vec<f64>> = Vec::new();
        if !u.is_empty() {
            c = u
                .iter()
                .map(|ui| {
                    let mut out = vec![0.0; n];
                    op.apply(ui, &mut out, &mut info);
                    out
                })
                .collect();
            match thin_qr(&mut c) {
                Some(rr) => right_solve_upper(&mut u, &rr),
                None => {
                    u.clear();
                    c.clear();
                }
            }
        }
        project(&mut op, &u, &c, &mut r, x, &mut info);
        let mut r_norm = norm2(&r);
        // CᵀU when it is known without dot products (after a harmonic Ritz update).
        let mut ctu: Option<DMatrix<f64>> = None;

        let mut w = vec![0.0; n];
        while r_norm > target && info.iterations < params.max_iter {
            let k = c.len();
            let steps = m - k;
            // Ĝ's columns: the first k are diag(1/‖uᵢ‖) (U is scaled to unit columns), then the
            // Arnoldi columns [Cᵀ Â v_j ; h_j]. `cols` are kept as computed (for the harmonic Ritz
            // problem); `rot` receives the Givens rotations that solve the least-squares problem.
            let scale: Vec<f64> = u.iter().map(|ui| 1.0 / norm2(ui)).collect();
            let mut cols: Vec<Vec<f64>> = Vec::with_capacity(m);
            let mut rot: Vec<Vec<f64>> = Vec::with_capacity(m);
            for (i, s) in scale.iter().enumerate() {
                let mut col = vec![0.0; m + 1];
                col[i] = *s;
                cols.push(col.clone());
                rot.push(col);
            }
            let mut v: Vec<Vec<f64>> = Vec::with_capacity(steps + 1);
            v.push(r.iter().map(|ri| ri / r_norm).collect());
            let mut g = vec![0.0; m + 1];
            g[k] = r_norm;
            let (mut cs, mut sn) = (vec![0.0; steps], vec![0.0; steps]);
            let mut j = 0;
            let mut lucky = false;
            while j < steps && info.iterations < params.max_iter {
                op.apply(&v[j], &mut w, &mut info);
                let mut col = vec![0.0; m + 1];
                orthogonalize(&mut w, &c, &mut col[..k], ortho);
                orthogonalize(&mut w, &v, &mut col[k..k + j + 1], ortho);
                let wn = norm2(&w);
                if !wn.is_finite() {
                    self.u.clear();
                    return Err(SolveError::Breakdown {
                        method: METHOD,
                        iteration: info.iterations,
                        quantity: "‖w‖",
                        value: wn,
                        hint: "; the operator or preconditioner produced NaN or infinity",
                    });
                }
                col[k + j + 1] = wn;
                cols.push(col.clone());
                let est = givens_step(&mut col[k..], j, &mut cs, &mut sn, &mut g[k..]);
                rot.push(col);
                info.iterations += 1;
                j += 1;
                if params.history {
                    info.history.push(est / b_norm);
                }
                if wn == 0.0 {
                    lucky = true;
                    break;
                }
                // Pushed before the convergence test: the harmonic Ritz problem needs V_{j+1}.
                v.push(w.iter().map(|wi| wi / wn).collect());
                if est <= target {
                    break;
                }
            }
            let cycle_cols = k + j;
            let y = solve_upper(&rot, &g, cycle_cols);
            // d = Ũ y₁ + V y₂ with Ũ = U·diag(scale).
            let mut d = vec![0.0; n];
            for i in 0..k {
                axpy(y[i] * scale[i], &u[i], &mut d);
            }
            for (vi, yi) in v.iter().zip(&y[k..]) {
                axpy(*yi, vi, &mut d);
            }
            op.correct(&d, x, &mut info);
            residual(a, b, x, &mut r);
            info.matvecs += 1;

            // New recycle space from this cycle's harmonic Ritz vectors: after every cycle, or
            // only when there is none yet and when the solve is done.
            let done = norm2(&r) <= target || info.iterations >= params.max_iter;
            let refresh = match self.params.update {
                RecycleUpdate::EveryCycle => true,
                RecycleUpdate::PerSystem => c.is_empty() || done,
            };
            if k_max > 0 && !lucky && j >= 1 && refresh {
                let rows = k + j + 1;
                let g_hat = DMatrix::from_fn(rows, cycle_cols, |row, col| cols[col][row]);
                // V̂ᵀŴ with V̂ = [C, V_{j+1}] and Ŵ = [Ũ, V_j]; CᵀV = 0 by construction.
                let mut vw = DMatrix::zeros(rows, cycle_cols);
                if k > 0 {
                    // CᵀŨ is known from the last update's small matrices; after a change of
                    // system it costs k² dot products once.
                    let ctu = ctu
                        .take()
                        .unwrap_or_else(|| cross_dots(&refs(&c), &refs(&u)));
                    let vtu = cross_dots(&refs(&v), &refs(&u));
                    for col in 0..k {
                        for row in 0..k {
                            vw[(row, col)] = ctu[(row, col)] * scale[col];
                        }
                        for row in 0..v.len() {
                            vw[(k + row, col)] = vtu[(row, col)] * scale[col];
                        }
                    }
                }
                for col in 0..j {
                    vw[(k + col, k + col)] = 1.0;
                }
                if let Some(p) = harmonic_ritz(&g_hat, &vw, k_max) {
                    let gp = &g_hat * &p;
                    // QR of Ĝ·P: C = V̂·Q and U = Ŵ·P·R⁻¹, with Ŵ = [U·diag(scale), V_j]; the
                    // scaling and R⁻¹ go into the small coefficient matrix, so each new block is
                    // one pass over the old vectors.
                    let mut gp_cols: Vec<Vec<f64>> = (0..gp.ncols())
                        .map(|col| gp.column(col).iter().copied().collect())
                        .collect();
                    let v_hat_len = k + (j + 1).min(v.len());
                    if let Some(rr) = thin_qr(&mut gp_cols).filter(|_| v_hat_len == rows) {
                        let qm =
                            DMatrix::from_fn(rows, gp_cols.len(), |row, col| gp_cols[col][row]);
                        if let Some(r_inv) = rr.try_inverse() {
                            let p_r = &p * &r_inv;
                            let mut coeffs = p_r.clone();
                            for (i, s) in scale.iter().enumerate() {
                                coeffs.row_mut(i).scale_mut(*s);
                            }
                            let w_hat: Vec<&[f64]> = u
                                .iter()
                                .chain(v.iter().take(j))
                                .map(|x| x.as_slice())
                                .collect();
                            let new_u = combine(&w_hat, &coeffs);
                            let v_hat: Vec<&[f64]> = c
                                .iter()
                                .chain(v.iter().take(j + 1))
                                .map(|x| x.as_slice())
                                .collect();
                            let new_c = combine(&v_hat, &qm);
                            // C_newᵀ U_new = Qᵀ (V̂ᵀŴ) P R⁻¹.
                            ctu = Some(qm.transpose() * &vw * &p_r);
                            c = new_c;
                            u = new_u;
                        }
                    }
                }
            }
            project(&mut op, &u, &c, &mut r, x, &mut info);
            let new_norm = norm2(&r);
            if !new_norm.is_finite() {
                return Err(SolveError::Breakdown {
                    method: METHOD,
                    iteration: info.iterations,
                    quantity: "‖b − Ax‖",
                    value: new_norm,
                    hint: "",
                });
            }
            r_norm = new_norm;
        }
        self.u = u;
        finish(METHOD, a, b, x, &mut r, b_norm, params.rtol, info)
    }
}

fn refs(block: &[Vec<f64>]) -> Vec<&[f64]> {
    block.iter().map(|v| v.as_slice()).collect()
}

/// Removes the residual's component in range(C): x ← x + M⁻¹ U Cᵀ r, r ← r − C Cᵀ r.
fn project<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    op: &mut RightPrecond<'_, A, M>,
    u: &[Vec<f64>],
    c: &[Vec<f64>],
    r: &mut [f64],
    x: &mut [f64],
    info: &mut SolveInfo,
) {
    if c.is_empty() {
        return;
    }
    let coeffs: Vec<f64> = c.iter().map(|ci| dot(ci, r)).collect();
    let mut d = vec![0.0; r.len()];
    for ((ui, ci), s) in u.iter().zip(c).zip(&coeffs) {
        axpy(*s, ui, &mut d);
        axpy(-*s, ci, r);
    }
    op.correct(&d, x, info);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::gmres::{gmres, GmresParams};
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::linalg::{CsrOperator, Identity, Jacobi};

    #[test]
    fn with_no_recycling_it_matches_gmres_iteration_counts() {
        for (shift, conv) in [(0.0, 0.0), (0.0, 0.3), (-0.2, 0.1)] {
            let a = convection_diffusion(14, shift, conv);
            let b = rhs(a.rows(), 0.2);
            let params = SolveParams::new(1e-8, 20_000);
            let mut x1 = vec![0.0; a.rows()];
            let g = gmres(
                &CsrOperator::new(&a),
                &Identity,
                &b,
                &mut x1,
                &params,
                &GmresParams::new(25),
            )
            .unwrap();
            let mut x2 = vec![0.0; a.rows()];
            let mut solver = GcroDr::new(GcroDrParams::new(25, 0)).unwrap();
            let h = solver
                .solve(&CsrOperator::new(&a), &Identity, &b, &mut x2, &params)
                .unwrap();
            assert_eq!(g.iterations, h.iterations, "shift {shift} conv {conv}");
        }
    }

    #[test]
    fn converges_on_spd_nonsymmetric_and_indefinite_matrices() {
        for (shift, conv) in [(0.0, 0.0), (0.0, 0.4), (-0.3, 0.2)] {
            let a = convection_diffusion(16, shift, conv);
            let b = rhs(a.rows(), 0.7);
            let mut x = vec![0.0; a.rows()];
            let mut solver = GcroDr::new(GcroDrParams::new(20, 6)).unwrap();
            let info = solver
                .solve(
                    &CsrOperator::new(&a),
                    &Jacobi::new(&a).unwrap(),
                    &b,
                    &mut x,
                    &SolveParams::new(1e-9, 5000),
                )
                .unwrap_or_else(|e| panic!("shift {shift} conv {conv}: {e}"));
            assert!(info.rel_residual <= 1e-9);
            assert!(true_rel_residual(&a, &b, &x) <= 1e-9);
            assert!(solver.recycle_dim() >= 6);
        }
    }

    #[test]
    fn recycling_reduces_iterations_on_slowly_varying_systems() {
        let params = SolveParams::new(1e-8, 20_000);
        let systems: Vec<_> = (0..6)
            .map(|s| convection_diffusion(24, 0.01 * s as f64, 0.05))
            .collect();
        let mut fresh = 0;
        let mut recycled = 0;
        let mut solver = GcroDr::new(GcroDrParams::new(30, 10)).unwrap();
        for (s, a) in systems.iter().enumerate() {
            let b = rhs(a.rows(), s as f64);
            let mut x = vec![0.0; a.rows()];
            let mut one = GcroDr::new(GcroDrParams::new(30, 10)).unwrap();
            fresh += one
                .solve(&CsrOperator::new(a), &Identity, &b, &mut x, &params)
                .unwrap()
                .iterations;
            let mut x = vec![0.0; a.rows()];
            let info = solver
                .solve(&CsrOperator::new(a), &Identity, &b, &mut x, &params)
                .unwrap();
            assert!(true_rel_residual(a, &b, &x) <= 1e-8);
            recycled += info.iterations;
        }
        assert!(
            (recycled as f64) < 0.8 * fresh as f64,
            "recycled {recycled} vs fresh {fresh}"
        );
    }

    #[test]
    fn rejects_recycle_not_below_restart() {
        assert!(matches!(
            GcroDr::new(GcroDrParams::new(10, 10)),
            Err(SolveError::BadParams { .. })
        ));
    }
}
