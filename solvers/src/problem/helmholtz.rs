//! 2-D Helmholtz `−Δu − k(x)²u = f` on the unit square with `u = 0` on the boundary, five-point
//! finite differences on an `m × m` interior grid. Indefinite once k exceeds the lowest Dirichlet
//! eigenvalue's √(2π²): solve it with GMRES-type methods, not CG.

use super::{laplacian_2d_with, LinearSystem};
use ndarray::Array2;

/// The system for wavenumber `k` and source `f`, both sampled at the interior points, scaled by h².
pub fn assemble(k: &Array2<f64>, f: &Array2<f64>) -> LinearSystem {
    let m = k.nrows();
    assert!(
        k.dim() == (m, m) && f.dim() == (m, m),
        "Helmholtz fields must be m × m"
    );
    let h = 1.0 / (m + 1) as f64;
    let k2: Vec<f64> = k.iter().map(|v| v * v * h * h).collect();
    LinearSystem {
        matrix: laplacian_2d_with(m, |i| -k2[i], |_| 1.0),
        rhs: f.iter().map(|v| v * h * h).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::{gmres, GmresParams, SolveParams};
    use crate::linalg::{CsrOperator, Identity};
    use std::f64::consts::PI;

    fn max_error(m: usize) -> f64 {
        let h = 1.0 / (m + 1) as f64;
        let kk = 9.0;
        let u = |x: f64, y: f64| (PI * x).sin() * (PI * y).sin() * (1.0 + x);
        // −Δu = 2π² s(1+x) − 2π cos(πx) sin(πy), with s = sin(πx) sin(πy).
        let lap = |x: f64, y: f64| {
            2.0 * PI * PI * (PI * x).sin() * (PI * y).sin() * (1.0 + x)
                - 2.0 * PI * (PI * x).cos() * (PI * y).sin()
        };
        let pt = |p: usize| (p + 1) as f64 * h;
        let k = Array2::from_elem((m, m), kk);
        let f = Array2::from_shape_fn((m, m), |(p, q)| {
            lap(pt(p), pt(q)) - kk * kk * u(pt(p), pt(q))
        });
        let sys = assemble(&k, &f);
        let mut x = vec![0.0; m * m];
        gmres(
            &CsrOperator::new(&sys.matrix),
            &Identity,
            &sys.rhs,
            &mut x,
            &SolveParams::new(1e-12, 50_000),
            &GmresParams::new(100),
        )
        .unwrap();
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - u(pt(i / m), pt(i % m))).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn indefinite_helmholtz_converges_at_second_order() {
        // k = 9 > √2·π ≈ 4.44: the matrix has negative eigenvalues.
        let (e1, e2) = (max_error(15), max_error(31));
        let order = (e1 / e2).log2();
        assert!(order > 1.8 && order < 2.2, "order {order} ({e1}, {e2})");
    }
}
