//! Problem families that assemble sparse systems.

pub mod darcy;
pub mod helmholtz;
pub mod poisson;

use sprs::CsMat;

/// A sparse linear system `A x = b`.
#[derive(Debug, Clone)]
pub struct LinearSystem {
    pub matrix: CsMat<f64>,
    pub rhs: Vec<f64>,
}

/// The `m × m` five-point Laplacian stencil (4 on the diagonal, −1 to each neighbour, no 1/h²)
/// plus `shift · I`, on an `m²` grid with Dirichlet boundaries.
pub fn laplacian_2d(m: usize, shift: f64) -> CsMat<f64> {
    laplacian_2d_with(m, |_| shift, |_| 1.0)
}

/// The five-point stencil on an `m × m` interior grid (row-major, Dirichlet) with `shift(i)` added
/// to diagonal entry i and column j scaled by `column_scale(j)`: `(L + diag(shift))·diag(scale)`.
pub fn laplacian_2d_with(
    m: usize,
    shift: impl Fn(usize) -> f64,
    column_scale: impl Fn(usize) -> f64,
) -> CsMat<f64> {
    let n = m * m;
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::with_capacity(5 * n);
    let mut data = Vec::with_capacity(5 * n);
    indptr.push(0);
    let mut push = |indices: &mut Vec<usize>, col: usize, v: f64| {
        indices.push(col);
        data.push(v * column_scale(col));
    };
    for p in 0..m {
        for q in 0..m {
            let row = p * m + q;
            if p > 0 {
                push(&mut indices, row - m, -1.0);
            }
            if q > 0 {
                push(&mut indices, row - 1, -1.0);
            }
            push(&mut indices, row, 4.0 + shift(row));
            if q + 1 < m {
                push(&mut indices, row + 1, -1.0);
            }
            if p + 1 < m {
                push(&mut indices, row + m, -1.0);
            }
            indptr.push(indices.len());
        }
    }
    CsMat::new((n, n), indptr, indices, data)
}
