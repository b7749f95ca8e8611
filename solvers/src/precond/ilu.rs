//! ILU(0): incomplete LU with the sparsity pattern of A.

use crate::linalg::Preconditioner;
use sprs::CsMat;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum IluError {
    #[error(
        "ILU(0): row {row} has no diagonal entry; ILU(0) needs a structurally non-zero diagonal"
    )]
    MissingDiagonal { row: usize },
    #[error("ILU(0): pivot {value:.3e} at row {row}; the factorisation broke down (try AMG or a smaller drop tolerance method)")]
    ZeroPivot { row: usize, value: f64 },
    #[error("ILU(0): needs a square CSR matrix")]
    BadMatrix,
}

/// L (unit lower) and U factors stored in A's pattern.
#[derive(Debug, Clone)]
pub struct Ilu0 {
    indptr: Vec<usize>,
    indices: Vec<usize>,
    values: Vec<f64>,
    /// Position of the diagonal entry of each row in `values`.
    diag: Vec<usize>,
}

impl Ilu0 {
    pub fn new(a: &CsMat<f64>) -> Result<Self, IluError> {
        if !a.is_csr() || a.rows() != a.cols() {
            return Err(IluError::BadMatrix);
        }
        let n = a.rows();
        let indptr: Vec<usize> = a.indptr().raw_storage().to_vec();
        let indices = a.indices().to_vec();
        let mut values = a.data().to_vec();
        let diag = (0..n)
            .map(|i| {
                let (lo, hi) = (indptr[i], indptr[i + 1]);
                indices[lo..hi]
                    .iter()
                    .position(|&j| j == i)
                    .map(|p| lo + p)
                    .ok_or(IluError::MissingDiagonal { row: i })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Position of column j in the current row, or usize::MAX.
        let mut pos = vec![usize::MAX; n];
        for i in 0..n {
            let (lo, hi) = (indptr[i], indptr[i + 1]);
            for p in lo..hi {
                pos[indices[p]] = p;
            }
            for p in lo..diag[i] {
                let k = indices[p];
                let pivot = values[diag[k]];
                let lik = values[p] / pivot;
                values[p] = lik;
                for q in diag[k] + 1..indptr[k + 1] {
                    let target = pos[indices[q]];
                    if target != usize::MAX {
                        values[target] -= lik * values[q];
                    }
                }
            }
            let d = values[diag[i]];
            if d == 0.0 || !d.is_finite() {
                return Err(IluError::ZeroPivot { row: i, value: d });
            }
            for p in lo..hi {
                pos[indices[p]] = usize::MAX;
            }
        }
        Ok(Self {
            indptr,
            indices,
            values,
            diag,
        })
    }
}

impl Preconditioner for Ilu0 {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        let n = r.len();
        for i in 0..n {
            let mut s = r[i];
            for p in self.indptr[i]..self.diag[i] {
                s -= self.values[p] * z[self.indices[p]];
            }
            z[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = z[i];
            for p in self.diag[i] + 1..self.indptr[i + 1] {
                s -= self.values[p] * z[self.indices[p]];
            }
            z[i] = s / self.values[self.diag[i]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::krylov::{gmres, GmresParams, SolveParams};
    use crate::linalg::{CsrOperator, Identity};
    use sprs::TriMat;

    #[test]
    fn ilu0_of_a_tridiagonal_matrix_is_exact() {
        // No fill-in for a tridiagonal matrix: ILU(0) = LU, so one application solves the system.
        let n = 30;
        let mut t = TriMat::new((n, n));
        for i in 0..n {
            t.add_triplet(i, i, 3.0 + (i % 4) as f64);
            if i + 1 < n {
                t.add_triplet(i, i + 1, -1.0);
                t.add_triplet(i + 1, i, -1.3);
            }
        }
        let a: CsMat<f64> = t.to_csr();
        let b = rhs(n, 0.1);
        let mut x = vec![0.0; n];
        Ilu0::new(&a).unwrap().apply(&b, &mut x);
        assert!(true_rel_residual(&a, &b, &x) < 1e-13);
    }

    #[test]
    fn ilu0_cuts_gmres_iterations() {
        let a = convection_diffusion(24, 0.0, 0.3);
        let b = rhs(a.rows(), 0.0);
        let params = SolveParams::new(1e-8, 5000);
        let run = |m: &dyn Preconditioner| {
            let mut x = vec![0.0; a.rows()];
            gmres(
                &CsrOperator::new(&a),
                m,
                &b,
                &mut x,
                &params,
                &GmresParams::new(30),
            )
            .unwrap()
            .iterations
        };
        let plain = run(&Identity);
        let ilu = run(&Ilu0::new(&a).unwrap());
        assert!(ilu * 2 < plain, "ILU {ilu} vs none {plain}");
    }

    #[test]
    fn ilu0_reports_a_missing_diagonal() {
        let mut t = TriMat::new((2, 2));
        t.add_triplet(0, 0, 1.0);
        t.add_triplet(1, 0, 1.0);
        let a: CsMat<f64> = t.to_csr();
        assert_eq!(
            Ilu0::new(&a).unwrap_err(),
            IluError::MissingDiagonal { row: 1 }
        );
    }
}
