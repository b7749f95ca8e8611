//! 2-D Poisson `−Δu = f` on the unit square with `u = 0` on the boundary, five-point finite
//! differences on an `m × m` interior grid (h = 1/(m + 1)).

use super::{laplacian_2d, LinearSystem};
use ndarray::Array2;

/// The system for source `f` sampled at the `m × m` interior points (row-major), scaled by h² so
/// the matrix is the integer stencil.
pub fn assemble(f: &Array2<f64>) -> LinearSystem {
    let m = f.nrows();
    assert_eq!(f.ncols(), m, "Poisson source must be square");
    let h = 1.0 / (m + 1) as f64;
    LinearSystem {
        matrix: laplacian_2d(m, 0.0),
        rhs: f.iter().map(|v| v * h * h).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::{cg, SolveParams};
    use crate::linalg::{CsrOperator, Identity};
    use std::f64::consts::PI;

    fn max_error(m: usize) -> f64 {
        let h = 1.0 / (m + 1) as f64;
        let u = |x: f64, y: f64| (PI * x).sin() * (2.0 * PI * y).sin();
        let f = Array2::from_shape_fn((m, m), |(p, q)| {
            5.0 * PI * PI * u((p + 1) as f64 * h, (q + 1) as f64 * h)
        });
        let sys = assemble(&f);
        let mut x = vec![0.0; m * m];
        cg(
            &CsrOperator::new(&sys.matrix),
            &Identity,
            &sys.rhs,
            &mut x,
            &SolveParams::new(1e-12, 10_000),
        )
        .unwrap();
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - u((i / m + 1) as f64 * h, (i % m + 1) as f64 * h)).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn poisson_converges_at_second_order() {
        let (e1, e2) = (max_error(15), max_error(31));
        let order = (e1 / e2).log2();
        assert!(order > 1.9 && order < 2.1, "order {order} ({e1}, {e2})");
    }
}
