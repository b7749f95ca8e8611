//! GCRO-DR(m, k) (Parks, de Sturler, Mackey, Johnson and Maiti 2006): restarted GMRES that keeps
//! k harmonic Ritz vectors of each cycle as a recycle space, across cycles *and across systems*.
//!
//! Preconditioning is on the right: the method runs on Â = A·M⁻¹ and every correction d is applied
//! as x ← x + M⁻¹d. The recycle space lives in that preconditioned space; within a solve
//! C = Â·U with orthonormal C. When a new system arrives, `[Q, R] = qr(Â_new·U)`, C ← Q and
//! U ← U·R⁻¹, and the initial residual is projected onto the complement of C.
//!
//! With k = 0 every cycle is a GMRES(m) cycle, and the iterates match [`super::gmres`].

use super::block::{cross, gemm, orthogonalize_on, Block, Orthogonalization};
use super::dense::{harmonic_ritz, right_solve_upper_block, thin_qr};
use super::gmres::{givens_step, solve_upper};
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

/// A GCRO-DR solver whose recycle space persists from one [`GcroDr::solve`] to the next, with the
/// workspace it solves in (so a sequence of solves allocates once).
#[derive(Debug, Clone)]
pub struct GcroDr {
    params: GcroDrParams,
    /// The recycle space U (in the preconditioned space), kept between solves.
    u: Block,
    ws: Workspace,
}

/// Scratch of one solve, kept for the next.
#[derive(Debug, Clone, Default)]
struct Workspace {
    /// [C | V]: the recycle space's image C, then this cycle's Arnoldi vectors.
    cv: Block,
    /// Where the recycle-space update writes the new C and U before they replace the old.
    next_c: Block,
    next_u: Block,
    /// Ĝ's columns as computed and as rotated (Givens), `m + 1` entries each.
    cols: Vec<f64>,
    rot: Vec<f64>,
    scale: Vec<f64>,
    g: Vec<f64>,
    y: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    scratch: Vec<f64>,
    partials: Vec<f64>,
    r: Vec<f64>,
    w: Vec<f64>,
    d: Vec<f64>,
    tmp: Vec<f64>,
}

impl Workspace {
    fn size(&mut self, n: usize, m: usize, k: usize) {
        self.cv.reset(n, m + 1);
        self.next_c.reset(n, k + 1);
        self.next_u.reset(n, k + 1);
        for (vec, len) in [
            (&mut self.cols, m * (m + 1)),
            (&mut self.rot, m * (m + 1)),
            (&mut self.scale, m),
            (&mut self.g, m + 1),
            (&mut self.y, m),
            (&mut self.cs, m),
            (&mut self.sn, m),
            (&mut self.scratch, m + 1),
            (&mut self.r, n),
            (&mut self.w, n),
            (&mut self.d, n),
            (&mut self.tmp, n),
        ] {
            vec.clear();
            vec.resize(len, 0.0);
        }
    }
}

/// `out = Â v = A M⁻¹ v`.
fn apply_op<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    a: &A,
    m: &M,
    v: &[f64],
    out: &mut [f64],
    tmp: &mut [f64],
    info: &mut SolveInfo,
) {
    m.apply(v, tmp);
    a.apply(tmp, out);
    info.matvecs += 1;
    info.precond_applies += 1;
}

/// x ← x + M⁻¹ d.
fn correct<M: Preconditioner + ?Sized>(
    m: &M,
    d: &[f64],
    x: &mut [f64],
    tmp: &mut [f64],
    info: &mut SolveInfo,
) {
    m.apply(d, tmp);
    axpy(1.0, tmp, x);
    info.precond_applies += 1;
}

impl GcroDr {
    pub fn new(params: GcroDrParams) -> Result<Self, SolveError> {
        params.validate()?;
        Ok(Self {
            params,
            u: Block::default(),
            ws: Workspace::default(),
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
        self.u.truncate(0);
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
        let m = self.params.restart.min(n);
        let k_max = self.params.recycle.min(m.saturating_sub(1));
        if self.u.n() != n {
            self.u.reset(n, k_max + 1);
        }
        let ortho = self.params.orthogonalization;
        let update = self.params.update;
        let target = params.rtol * b_norm;
        let mut info = SolveInfo::default();
        self.ws.size(n, m, k_max);
        let u = &mut self.u;
        let Workspace {
            cv,
            next_c,
            next_u,
            cols,
            rot,
            scale,
            g,
            y,
            cs,
            sn,
            scratch,
            partials,
            r,
            w,
            d,
            tmp,
        } = &mut self.ws;
        let parallel = a.parallel();
        let stride = m + 1;
        residual(a, b, x, r);
        info.matvecs += 1;

        // Carry the recycle space over to this matrix: C = qr(Â U), U ← U R⁻¹.
        for i in 0..u.len() {
            let out = cv.push_zero();
            apply_op(a, precond, u.col(i), out, tmp, &mut info);
        }
        if !u.is_empty() {
            match thin_qr(cv.data_mut(), n) {
                Some(rr) => right_solve_upper_block(u.data_mut(), n, &rr),
                None => {
                    u.truncate(0);
                    cv.truncate(0);
                }
            }
        }
        let mut kc = cv.len();
        project(precond, u, cv.first(kc), r, x, d, tmp, scratch, &mut info);
        let mut r_norm = norm2(r);
        // CᵀU when it is known without dot products (after a harmonic Ritz update).
        let mut ctu: Option<DMatrix<f64>> = None;

        while r_norm > target && info.iterations < params.max_iter {
            let k = kc;
            cv.truncate(k);
            let steps = m - k;
            // Ĝ's columns: the first k are diag(1/‖uᵢ‖) (U is scaled to unit columns), then the
            // Arnoldi columns [Cᵀ Â v_j ; h_j]. `cols` are kept as computed (for the harmonic Ritz
            // problem); `rot` receives the Givens rotations that solve the least-squares problem.
            cols.fill(0.0);
            rot.fill(0.0);
            for i in 0..k {
                scale[i] = 1.0 / norm2(u.col(i));
                cols[i * stride + i] = scale[i];
                rot[i * stride + i] = scale[i];
            }
            cv.push_divided(r, r_norm);
            g.fill(0.0);
            g[k] = r_norm;
            cs.fill(0.0);
            sn.fill(0.0);
            let mut j = 0;
            let mut lucky = false;
            while j < steps && info.iterations < params.max_iter {
                apply_op(a, precond, cv.col(k + j), w, tmp, &mut info);
                let col = &mut cols[(k + j) * stride..(k + j + 1) * stride];
                let wn = orthogonalize_on(
                    cv.first(k + j + 1),
                    w,
                    col,
                    scratch,
                    ortho,
                    parallel.then_some(&mut *partials),
                );
                if !wn.is_finite() {
                    u.truncate(0);
                    return Err(SolveError::Breakdown {
                        method: METHOD,
                        iteration: info.iterations,
                        quantity: "‖w‖",
                        value: wn,
                        hint: "; the operator or preconditioner produced NaN or infinity",
                    });
                }
                col[k + j + 1] = wn;
                let rcol = &mut rot[(k + j) * stride..(k + j + 1) * stride];
                rcol.copy_from_slice(col);
                let est = givens_step(&mut rcol[k..], j, cs, sn, &mut g[k..]);
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
                cv.push_divided(w, wn);
                if est <= target {
                    break;
                }
            }
            let cycle_cols = k + j;
            solve_upper(rot, stride, g, cycle_cols, y);
            // d = Ũ y₁ + V y₂ with Ũ = U·diag(scale).
            d.fill(0.0);
            for i in 0..k {
                axpy(y[i] * scale[i], u.col(i), d);
            }
            for i in 0..j {
                axpy(y[k + i], cv.col(k + i), d);
            }
            correct(precond, d, x, tmp, &mut info);
            residual(a, b, x, r);
            info.matvecs += 1;

            // New recycle space from this cycle's harmonic Ritz vectors: after every cycle, or
            // only when there is none yet and when the solve is done.
            let done = norm2(r) <= target || info.iterations >= params.max_iter;
            let refresh = match update {
                RecycleUpdate::EveryCycle => true,
                RecycleUpdate::PerSystem => k == 0 || done,
            };
            if k_max > 0 && !lucky && j >= 1 && refresh {
                let rows = k + j + 1;
                let g_hat = DMatrix::from_fn(rows, cycle_cols, |row, col| cols[col * stride + row]);
                // V̂ᵀŴ with V̂ = [C, V_{j+1}] and Ŵ = [Ũ, V_j]; CᵀV = 0 by construction.
                let mut vw = DMatrix::zeros(rows, cycle_cols);
                if k > 0 {
                    // CᵀŨ is known from the last update's small matrices; after a change of
                    // system it costs one k×k product once.
                    let ctu = ctu.take().unwrap_or_else(|| {
                        let mut out = DMatrix::zeros(k, k);
                        cross(n, cv.first(k), u.first(k), out.as_mut_slice());
                        out
                    });
                    let mut vtu = DMatrix::zeros(j + 1, k);
                    cross(n, cv.range(k, rows), u.first(k), vtu.as_mut_slice());
                    for col in 0..k {
                        for row in 0..k {
                            vw[(row, col)] = ctu[(row, col)] * scale[col];
                        }
                        for row in 0..=j {
                            vw[(k + row, col)] = vtu[(row, col)] * scale[col];
                        }
                    }
                }
                for col in 0..j {
                    vw[(k + col, k + col)] = 1.0;
                }
                if let Some(p) = harmonic_ritz(&g_hat, &vw, k_max) {
                    // QR of Ĝ·P: C = V̂·Q and U = Ŵ·P·R⁻¹, with Ŵ = [U·diag(scale), V_j]; the
                    // scaling and R⁻¹ go into the small coefficient matrix, so each new block is
                    // one GEMM over the old vectors.
                    let mut qm = &g_hat * &p;
                    if let Some(rr) = thin_qr(qm.as_mut_slice(), rows) {
                        if let Some(r_inv) = rr.try_inverse() {
                            let p_r = &p * &r_inv;
                            let mut coeffs = p_r.clone();
                            for (i, s) in scale.iter().take(k).enumerate() {
                                coeffs.row_mut(i).scale_mut(*s);
                            }
                            let kept = qm.ncols();
                            next_u.set_len(n, kept);
                            gemm(
                                n,
                                k,
                                u.first(k),
                                coeffs.as_slice(),
                                cycle_cols,
                                0.0,
                                next_u.data_mut(),
                            );
                            gemm(
                                n,
                                j,
                                cv.range(k, k + j),
                                &coeffs.as_slice()[k..],
                                cycle_cols,
                                1.0,
                                next_u.data_mut(),
                            );
                            next_c.set_len(n, kept);
                            gemm(
                                n,
                                rows,
                                cv.first(rows),
                                qm.as_slice(),
                                rows,
                                0.0,
                                next_c.data_mut(),
                            );
                            // C_newᵀ U_new = Qᵀ (V̂ᵀŴ) P R⁻¹.
                            ctu = Some(qm.transpose() * &vw * &p_r);
                            std::mem::swap(u, next_u);
                            std::mem::swap(cv, next_c);
                            kc = kept;
                        }
                    }
                }
            }
            cv.truncate(kc);
            project(precond, u, cv.first(kc), r, x, d, tmp, scratch, &mut info);
            let new_norm = norm2(r);
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
        finish(METHOD, a, b, x, r, b_norm, params.rtol, info)
    }
}

/// Removes the residual's component in range(C): x ← x + M⁻¹ U Cᵀ r, r ← r − C Cᵀ r.
#[allow(clippy::too_many_arguments)]
fn project<M: Preconditioner + ?Sized>(
    precond: &M,
    u: &Block,
    c: &[f64],
    r: &mut [f64],
    x: &mut [f64],
    d: &mut [f64],
    tmp: &mut [f64],
    coeffs: &mut [f64],
    info: &mut SolveInfo,
) {
    let n = r.len();
    let k = c.len() / n.max(1);
    if k == 0 {
        return;
    }
    let coeffs = &mut coeffs[..k];
    for (i, s) in coeffs.iter_mut().enumerate() {
        *s = dot(&c[i * n..(i + 1) * n], r);
    }
    d.fill(0.0);
    for (i, s) in coeffs.iter().enumerate() {
        axpy(*s, u.col(i), d);
        axpy(-*s, &c[i * n..(i + 1) * n], r);
    }
    correct(precond, d, x, tmp, info);
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
