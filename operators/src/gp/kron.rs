//! Kronecker algebra for covariances on 2-D tensor grids: `K = K₁ ⊗ K₂`, with each factor the
//! symmetric Toeplitz kernel matrix of one uniform axis. Grid values are `U[i][j]` at `(x_i, y_j)`,
//! row-major, so `vec(U)` runs along y fastest and
//!
//! - `K vec(U) = vec(K₁ U K₂)`,
//! - `K⁻¹ vec(U) = vec(K₁⁻¹ U K₂⁻¹)`,
//! - `log|K| = n₂ log|K₁| + n₁ log|K₂|`,
//!
//! without ever forming the n₁n₂ × n₁n₂ matrix. Each factor is handled in O(n²) per vector by
//! [`super::toeplitz`], so every operation here is O(n₁n₂(n₁ + n₂)).

use super::toeplitz::{apply_inverse, SymToeplitz};

/// One factored axis: the Toeplitz matrix and the first column of its inverse.
#[derive(Debug, Clone)]
pub struct Axis {
    pub matrix: SymToeplitz,
    inverse_first_column: Vec<f64>,
    pub log_det: f64,
}

impl Axis {
    /// Factors `matrix`; `None` if it is not positive definite to working precision.
    pub fn new(matrix: SymToeplitz) -> Option<Self> {
        let fac = matrix.factor(&[])?;
        Some(Self {
            matrix,
            inverse_first_column: fac.first_column,
            log_det: fac.log_det,
        })
    }

    pub fn len(&self) -> usize {
        self.matrix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matrix.is_empty()
    }

    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        apply_inverse(&self.inverse_first_column, b)
    }
}

/// `K₁ ⊗ K₂`.
#[derive(Debug, Clone)]
pub struct Kron2 {
    pub x: Axis,
    pub y: Axis,
}

/// Applies `f` to every column of the row-major `n₁ × n₂` array `u` (vectors along x).
fn along_x(u: &[f64], n1: usize, n2: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let mut out = vec![0.0; n1 * n2];
    let mut col = vec![0.0; n1];
    for j in 0..n2 {
        for i in 0..n1 {
            col[i] = u[i * n2 + j];
        }
        for (i, v) in f(&col).into_iter().enumerate() {
            out[i * n2 + j] = v;
        }
    }
    out
}

/// Applies `f` to every row (vectors along y).
fn along_y(u: &[f64], n2: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    u.chunks(n2).flat_map(f).collect()
}

impl Kron2 {
    pub fn new(kx: SymToeplitz, ky: SymToeplitz) -> Option<Self> {
        Some(Self {
            x: Axis::new(kx)?,
            y: Axis::new(ky)?,
        })
    }

    fn dims(&self) -> (usize, usize) {
        (self.x.len(), self.y.len())
    }

    /// `K vec(U)`.
    pub fn matvec(&self, u: &[f64]) -> Vec<f64> {
        let (n1, n2) = self.dims();
        let t = along_y(u, n2, |r| self.y.matrix.matvec(r));
        along_x(&t, n1, n2, |c| self.x.matrix.matvec(c))
    }

    /// `K⁻¹ vec(U)`.
    pub fn solve(&self, u: &[f64]) -> Vec<f64> {
        let (n1, n2) = self.dims();
        let t = along_y(u, n2, |r| self.y.solve(r));
        along_x(&t, n1, n2, |c| self.x.solve(c))
    }

    pub fn log_det(&self) -> f64 {
        let (n1, n2) = self.dims();
        n2 as f64 * self.x.log_det + n1 as f64 * self.y.log_det
    }

    /// `(A ⊗ I) vec(U)` for a Toeplitz operator A along x (e.g. `K₁''K₁⁻¹` is built from two of these).
    pub fn apply_x(&self, a: &SymToeplitz, u: &[f64]) -> Vec<f64> {
        let (n1, n2) = self.dims();
        along_x(u, n1, n2, |c| a.matvec(c))
    }

    /// `(I ⊗ B) vec(U)` for a Toeplitz operator B along y.
    pub fn apply_y(&self, b: &SymToeplitz, u: &[f64]) -> Vec<f64> {
        let (_, n2) = self.dims();
        along_y(u, n2, |r| b.matvec(r))
    }

    /// The second derivatives of the GP mean on the grid, `U_xx + U_yy = (K₁''K₁⁻¹ ⊗ I + I ⊗ K₂''K₂⁻¹) vec(U)`.
    pub fn laplacian_of_mean(&self, kxx: &SymToeplitz, kyy: &SymToeplitz, u: &[f64]) -> Vec<f64> {
        let (n1, n2) = self.dims();
        let ax = along_x(u, n1, n2, |c| kxx.matvec(&self.x.solve(c)));
        let ay = along_y(u, n2, |r| kyy.matvec(&self.y.solve(r)));
        ax.iter().zip(&ay).map(|(a, b)| a + b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    fn toeplitz(n: usize, scale: f64, jitter: f64) -> SymToeplitz {
        let h = 1.0 / (n - 1) as f64;
        let mut t: Vec<f64> = (0..n)
            .map(|d| {
                let x = d as f64 * h;
                (-x * x / (2.0 * scale * scale)).exp() * (6.0 * x).cos()
            })
            .collect();
        t[0] += jitter;
        SymToeplitz { t }
    }

    fn dense(t: &SymToeplitz) -> DMatrix<f64> {
        let n = t.len();
        DMatrix::from_fn(n, n, |i, j| t.t[i.abs_diff(j)])
    }

    #[test]
    fn kronecker_operations_match_the_dense_matrix() {
        let (n1, n2) = (7, 5);
        let (kx, ky) = (toeplitz(n1, 0.3, 1e-3), toeplitz(n2, 0.5, 1e-3));
        let k = Kron2::new(kx.clone(), ky.clone()).unwrap();
        let big = dense(&kx).kronecker(&dense(&ky));
        let u: Vec<f64> = (0..n1 * n2)
            .map(|p| (p as f64 * 0.37).sin() + 0.2)
            .collect();
        let uv = DVector::from_column_slice(&u);
        let close = |a: &[f64], b: &DVector<f64>, what: &str| {
            let rel = (DVector::from_column_slice(a) - b).norm() / b.norm();
            assert!(rel < 1e-8, "{what}: relative difference {rel}");
        };
        close(&k.matvec(&u), &(&big * &uv), "matvec");
        let chol = big.clone().cholesky().unwrap();
        close(&k.solve(&u), &chol.solve(&uv), "solve");
        let logdet: f64 = 2.0
            * chol
                .l_dirty()
                .diagonal()
                .iter()
                .map(|v| v.ln())
                .sum::<f64>();
        assert!(
            (k.log_det() - logdet).abs() < 1e-8 * logdet.abs(),
            "{} vs {logdet}",
            k.log_det()
        );
        // The Laplacian of the mean, against (Kxx Kx⁻¹ ⊗ I + I ⊗ Kyy Ky⁻¹) u formed densely.
        let (kxx, kyy) = (toeplitz(n1, 0.2, 0.0), toeplitz(n2, 0.25, 0.0));
        let dx = &dense(&kxx) * dense(&kx).try_inverse().unwrap();
        let dy = &dense(&kyy) * dense(&ky).try_inverse().unwrap();
        let op =
            dx.kronecker(&DMatrix::identity(n2, n2)) + DMatrix::identity(n1, n1).kronecker(&dy);
        close(
            &k.laplacian_of_mean(&kxx, &kyy, &u),
            &(&op * &uv),
            "laplacian of the mean",
        );
        close(
            &k.apply_x(&kxx, &u),
            &(dense(&kxx).kronecker(&DMatrix::identity(n2, n2)) * &uv),
            "apply_x",
        );
        close(
            &k.apply_y(&kyy, &u),
            &(DMatrix::identity(n1, n1).kronecker(&dense(&kyy)) * &uv),
            "apply_y",
        );
    }
}
