//! Second-order finite differences for `Δu + c·u(u² − 1) = s` with Dirichlet data on a uniform
//! 1-D or 2-D grid (`c = 0`: Poisson written as `Δu = s`; `c = 1`: Allen–Cahn). The plain
//! baseline users compare a collocation method against at the same number of points.
//!
//! Newton's method on the interior values; each step solves `−J δ = r` with
//! `−J = −Δ_h − c·diag(3u² − 1)`: by Jacobi-preconditioned CG for Poisson (SPD), by
//! Jacobi-preconditioned GMRES for Allen–Cahn, where `−J` is indefinite once `3u² − 1` exceeds
//! the smallest eigenvalue of `−Δ_h` (coarse grids, large u).

use crate::krylov::{cg, gmres, GmresParams};
use crate::linalg::{CsrOperator, Jacobi};
use crate::{SolveError, SolveParams};
use sprs::TriMat;
use thiserror::Error;

/// A problem on the tensor grid `dims` (1 or 2 axes, boundary points included) with spacing `h`
/// per axis. `source` and `boundary` hold a value per grid point, row-major (last axis fastest);
/// only the boundary ring of `boundary` is read.
#[derive(Debug, Clone, PartialEq)]
pub struct FdProblem {
    pub dims: Vec<usize>,
    pub h: Vec<f64>,
    pub source: Vec<f64>,
    pub boundary: Vec<f64>,
    pub nonlinearity: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdParams {
    /// Stop Newton when the update's max norm is at most this times the solution's.
    pub newton_tolerance: f64,
    pub max_newton: usize,
    /// Relative residual of each linear solve.
    pub linear_tolerance: f64,
    pub max_linear: usize,
}

impl Default for FdParams {
    fn default() -> Self {
        Self {
            newton_tolerance: 1e-13,
            max_newton: 50,
            linear_tolerance: 1e-12,
            max_linear: 100_000,
        }
    }
}

/// What the solve did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdInfo {
    pub newton_iterations: usize,
    pub linear_iterations: usize,
    /// The last Newton update relative to the solution (max norms).
    pub last_update: f64,
    pub converged: bool,
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum FdError {
    #[error("finite differences: {0}")]
    BadProblem(String),
    #[error("finite differences: the linear solve failed: {0}")]
    Linear(#[from] SolveError),
}

/// Solves the problem; returns the values at every grid point (boundary values copied from the
/// data).
pub fn solve(p: &FdProblem, params: &FdParams) -> Result<(Vec<f64>, FdInfo), FdError> {
    let dim = p.dims.len();
    let total: usize = p.dims.iter().product();
    if !(1..=2).contains(&dim)
        || p.h.len() != dim
        || p.dims.iter().any(|&n| n < 3)
        || p.source.len() != total
        || p.boundary.len() != total
    {
        return Err(FdError::BadProblem(format!(
            "expected 1 or 2 axes of at least 3 points with a spacing each and {total} source and boundary values; got dims {:?}, h {:?}, {} source and {} boundary values",
            p.dims,
            p.h,
            p.source.len(),
            p.boundary.len()
        )));
    }
    let (n1, n2) = if dim == 1 {
        (p.dims[0], 1)
    } else {
        (p.dims[0], p.dims[1])
    };
    let on_boundary =
        |i: usize, j: usize| i == 0 || i == n1 - 1 || (dim == 2 && (j == 0 || j == n2 - 1));
    // Interior numbering.
    let mut index = vec![usize::MAX; total];
    let mut interior = Vec::new();
    for i in 0..n1 {
        for j in 0..n2 {
            if !on_boundary(i, j) {
                index[i * n2 + j] = interior.len();
                interior.push(i * n2 + j);
            }
        }
    }
    let mut u: Vec<f64> = (0..total)
        .map(|k| {
            if index[k] == usize::MAX {
                p.boundary[k]
            } else {
                0.0
            }
        })
        .collect();
    // Neighbour offsets (in flat indices) and 1/h² per axis.
    let mut stencil = vec![(n2 as isize, 1.0 / (p.h[0] * p.h[0]))];
    if dim == 2 {
        stencil.push((1, 1.0 / (p.h[1] * p.h[1])));
    }
    let c = p.nonlinearity;
    let m = interior.len();
    let mut info = FdInfo {
        newton_iterations: 0,
        linear_iterations: 0,
        last_update: f64::INFINITY,
        converged: false,
    };
    let laplacian = |u: &[f64], k: usize| -> f64 {
        stencil
            .iter()
            .map(|&(off, w)| {
                w * (u[(k as isize - off) as usize] - 2.0 * u[k] + u[(k as isize + off) as usize])
            })
            .sum()
    };
    for _ in 0..params.max_newton.max(1) {
        let mut tri = TriMat::with_capacity((m, m), (2 * dim + 1) * m);
        let mut rhs = vec![0.0; m];
        for (row, &k) in interior.iter().enumerate() {
            let uk = u[k];
            rhs[row] = laplacian(&u, k) + c * uk * (uk * uk - 1.0) - p.source[k];
            let mut diag = -c * (3.0 * uk * uk - 1.0);
            for &(off, w) in &stencil {
                diag += 2.0 * w;
                for nb in [k as isize - off, k as isize + off] {
                    let col = index[nb as usize];
                    if col != usize::MAX {
                        tri.add_triplet(row, col, -w);
                    }
                }
            }
            tri.add_triplet(row, row, diag);
        }
        let a = tri.to_csr();
        let op = CsrOperator::new(&a);
        let jacobi = Jacobi::new(&a)
            .map_err(|e| FdError::BadProblem(format!("the Newton matrix is singular: {e}")))?;
        let mut delta = vec![0.0; m];
        let linear = SolveParams::new(params.linear_tolerance, params.max_linear);
        let solve_info = if c == 0.0 {
            cg(&op, &jacobi, &rhs, &mut delta, &linear)?
        } else {
            let restart = GmresParams {
                restart: 100,
                ..GmresParams::default()
            };
            gmres(&op, &jacobi, &rhs, &mut delta, &linear, &restart)?
        };
        info.newton_iterations += 1;
        info.linear_iterations += solve_info.iterations;
        let mut step = 0.0f64;
        let mut size = 0.0f64;
        for (row, &k) in interior.iter().enumerate() {
            u[k] += delta[row];
            step = step.max(delta[row].abs());
            size = size.max(u[k].abs());
        }
        info.last_update = step / size.max(f64::MIN_POSITIVE);
        if c == 0.0 {
            info.converged = solve_info.converged;
            break;
        }
        if info.last_update <= params.newton_tolerance {
            info.converged = solve_info.converged;
            break;
        }
    }
    Ok((u, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn grid_problem(dims: &[usize], c: f64) -> (FdProblem, Vec<f64>) {
        let u = |x: f64, y: f64| (PI * x).sin() * (1.0 + y) + x * x;
        let lap = |x: f64, y: f64| -PI * PI * (PI * x).sin() * (1.0 + y) + 2.0;
        let h: Vec<f64> = dims.iter().map(|&n| 1.0 / (n - 1) as f64).collect();
        let n2 = dims.get(1).copied().unwrap_or(1);
        let mut exact = vec![];
        let mut source = vec![];
        for i in 0..dims[0] {
            for j in 0..n2 {
                let (x, y) = (i as f64 * h[0], if n2 > 1 { j as f64 * h[1] } else { 0.0 });
                let v = u(x, y);
                exact.push(v);
                source.push(lap(x, y) + c * v * (v * v - 1.0));
            }
        }
        (
            FdProblem {
                dims: dims.to_vec(),
                h,
                source,
                boundary: exact.clone(),
                nonlinearity: c,
            },
            exact,
        )
    }

    fn max_error(dims: &[usize], c: f64) -> f64 {
        let (p, exact) = grid_problem(dims, c);
        let (u, info) = solve(&p, &FdParams::default()).unwrap();
        assert!(info.converged, "{info:?}");
        u.iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn second_order_in_one_and_two_dimensions_for_poisson_and_allen_cahn() {
        for c in [0.0, 1.0] {
            let e1 = max_error(&[17], c) / max_error(&[33], c);
            assert!((e1.log2() - 2.0).abs() < 0.1, "1-D, c = {c}: ratio {e1}");
            let e2 = max_error(&[17, 17], c) / max_error(&[33, 33], c);
            assert!((e2.log2() - 2.0).abs() < 0.1, "2-D, c = {c}: ratio {e2}");
        }
    }

    #[test]
    fn bad_shapes_are_reported() {
        let (mut p, _) = grid_problem(&[9], 0.0);
        p.source.pop();
        let err = solve(&p, &FdParams::default()).unwrap_err();
        assert!(err.to_string().contains("8 source"), "{err}");
    }
}
