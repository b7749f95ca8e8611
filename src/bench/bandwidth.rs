//! The memory-bandwidth limit of `bench solvers`: this machine's bandwidth measured by a
//! STREAM-like triad, and a model of the bytes each Krylov method moves per iteration, so a result
//! can say what fraction of the limit a method reached.
//!
//! The model counts the memory traffic of one iteration on a system too large for the caches:
//! the mat-vecs (CSR values and column indices, 8 bytes each, the row pointers, x read and y
//! written), the preconditioner applications (Jacobi: diagonal, r, z; ILU(0): its L and U
//! factors, which hold A's pattern, and two triangular sweeps' vectors; SSOR: two sweeps over A),
//! and the method's vector sweeps. CG and BiCGStab stream their few vectors in every sweep (a dot
//! product reads two, an axpy reads two and writes one). The Krylov methods with a basis read
//! each basis vector twice per step (modified Gram–Schmidt: its dot product, then its update)
//! while the new vector stays in cache: (m+1)/2 basis vectors on average in GMRES(m), plus the k
//! recycled ones in GCRO-DR(m, k) and deflated CG. GCRO-DR's per-cycle recycle-space update is not
//! counted, so its fraction is a lower bound. AMG (as solver or preconditioner) is not modelled:
//! its hierarchy's traffic depends on the coarsening. On a system whose working set fits in the
//! caches the fraction can exceed 1: the bound is main memory's.

use pdekit_solvers::sequence::{Method, PrecondKind, SolverSpec};
use rayon::prelude::*;
use std::time::Instant;

/// Elements per triad array: 3 × 128 MiB, far beyond any cache here.
const TRIAD_LEN: usize = 1 << 24;

/// Bytes per second of `a = b + s·c` over [`TRIAD_LEN`] doubles, best of 5 runs, counting 24 bytes
/// per element as STREAM does (the write-allocate read of `a` is not counted). Runs on the
/// current rayon pool's threads.
pub fn triad() -> f64 {
    let b = vec![1.0f64; TRIAD_LEN];
    let c = vec![2.0f64; TRIAD_LEN];
    let mut a = vec![0.0f64; TRIAD_LEN];
    let threads = rayon::current_num_threads();
    let chunk = TRIAD_LEN.div_ceil(threads);
    let mut best = f64::INFINITY;
    for k in 0..6 {
        let s = 3.0 + k as f64;
        let t = Instant::now();
        a.par_chunks_mut(chunk)
            .zip(b.par_chunks(chunk))
            .zip(c.par_chunks(chunk))
            .for_each(|((a, b), c)| {
                for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + s * c;
                }
            });
        // The first pass faults the pages in; it is not timed.
        if k > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    std::hint::black_box(&a);
    24.0 * TRIAD_LEN as f64 / best
}

/// The modelled bytes one iteration of `spec` moves on a system of `n` unknowns and `nnz` stored
/// entries, given the method's mat-vecs and preconditioner applications per iteration; `None`
/// where the model does not cover the method (AMG).
pub fn bytes_per_iteration(
    spec: &SolverSpec,
    n: usize,
    nnz: usize,
    matvecs_per_iteration: f64,
    applies_per_iteration: f64,
) -> Option<f64> {
    let (n, nnz) = (n as f64, nnz as f64);
    let vector = 8.0 * n;
    let matvec = 16.0 * nnz + 8.0 * (n + 1.0) + 2.0 * vector;
    let precond = match spec.precond {
        PrecondKind::None => 0.0,
        PrecondKind::Jacobi => 3.0 * vector,
        PrecondKind::Ilu0 => 16.0 * nnz + 4.0 * vector,
        PrecondKind::Ssor { .. } => 32.0 * nnz + 4.0 * vector,
        PrecondKind::Amg => return None,
    };
    // Vector sweeps of the method, in vectors read or written per iteration. Gram–Schmidt reads
    // each basis vector twice and writes the new one after normalising it.
    let gram_schmidt = |basis: f64| 2.0 * basis + 2.0;
    let sweeps = match spec.method {
        // 2 dots (4 vectors), 3 axpys (9).
        Method::Cg => 13.0,
        // Gram–Schmidt against (m+1)/2 vectors on average, plus the solution update (each basis
        // vector read once per cycle).
        Method::Gmres { restart } | Method::Fgmres { restart } => {
            gram_schmidt((restart as f64 + 1.0) / 2.0) + 1.0
        }
        // 4 dots (8 vectors), 6 axpy-like updates (18).
        Method::Bicgstab => 26.0,
        // Projection against the k recycled vectors, then Gram–Schmidt in the (m−k)-step cycle.
        Method::GcroDr {
            restart, recycle, ..
        } => {
            let inner = restart.saturating_sub(recycle) as f64;
            2.0 * recycle as f64 + gram_schmidt((inner + 1.0) / 2.0) + 1.0
        }
        // CG's sweeps plus a projection against the deflation space.
        Method::RecycledCg { recycle } => 13.0 + 2.0 * recycle as f64,
        Method::Amg => return None,
    };
    Some(matvecs_per_iteration * matvec + applies_per_iteration * precond + sweeps * vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: Method, precond: PrecondKind) -> SolverSpec {
        SolverSpec::new(method, precond, Default::default())
    }

    #[test]
    fn the_model_counts_what_an_iteration_reads_and_writes() {
        // CG without a preconditioner on n = 100, nnz = 500: one mat-vec (16·500 + 8·101 +
        // 2·800 bytes) and 13 vector sweeps of 800 bytes.
        let cg = bytes_per_iteration(&spec(Method::Cg, PrecondKind::None), 100, 500, 1.0, 0.0);
        assert_eq!(cg, Some(8000.0 + 808.0 + 1600.0 + 13.0 * 800.0));
        // Jacobi adds three vectors per application.
        let jacobi =
            bytes_per_iteration(&spec(Method::Cg, PrecondKind::Jacobi), 100, 500, 1.0, 1.0);
        assert_eq!(jacobi.unwrap() - cg.unwrap(), 2400.0);
        // GMRES(40) sweeps more than GMRES(10); AMG is not modelled.
        let g = |m| {
            bytes_per_iteration(
                &spec(Method::Gmres { restart: m }, PrecondKind::None),
                100,
                500,
                1.0,
                0.0,
            )
            .unwrap()
        };
        assert!(g(40) > g(10));
        assert_eq!(
            bytes_per_iteration(&spec(Method::Cg, PrecondKind::Amg), 100, 500, 1.0, 1.0),
            None
        );
    }

    #[test]
    fn the_triad_measures_a_positive_finite_bandwidth() {
        let b = triad();
        assert!(b.is_finite() && b > 1e8, "{b}");
    }
}
