//! Poisson `−Δu = f` on the unit interval or square with Dirichlet data `u = g`: three-point
//! (1-D) or five-point (2-D) finite differences on a vertex grid of `s` points per side including
//! the boundary (h = 1/(s − 1)).
//!
//! The random family draws `f` from a Gaussian random field and `g` from the boundary values of a
//! second, smoother one, so the boundary data are continuous around the corners.

use super::{
    laplacian_2d, vertex_coords, Family, LinearSystem, ProblemError, ProblemParams, Sample,
    SampleLayout, SampleReport,
};
use crate::field::{GrfParams, GrfSampler1d, GrfSampler2d, GrfSampler3d};
use crate::linalg::CsrRows;
use crate::param::{require, InvalidParam};
use crate::rng::sample_rng;
use crate::sequence::{SequenceSolver, SolverSpec};
use ndarray::Array2;
use sprs::CsMat;
use std::time::Instant;

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

/// The 2-D system on the interior of an `s × s` vertex grid: `f` is sampled at all `s × s` points
/// (its boundary values are unused) and `g` supplies the boundary values (its interior is unused).
/// Scaled by h², so the matrix is the integer stencil.
pub fn assemble_dirichlet(f: &Array2<f64>, g: &Array2<f64>) -> LinearSystem {
    let s = f.nrows();
    assert!(
        s >= 3 && f.dim() == (s, s) && g.dim() == (s, s),
        "Poisson fields must be s × s"
    );
    let m = s - 2;
    let h2 = (1.0 / (s - 1) as f64).powi(2);
    let mut rhs = vec![0.0; m * m];
    for p in 0..m {
        for q in 0..m {
            let (i, j) = (p + 1, q + 1);
            let mut b = h2 * f[[i, j]];
            if i == 1 {
                b += g[[0, j]];
            }
            if i == s - 2 {
                b += g[[s - 1, j]];
            }
            if j == 1 {
                b += g[[i, 0]];
            }
            if j == s - 2 {
                b += g[[i, s - 1]];
            }
            rhs[p * m + q] = b;
        }
    }
    LinearSystem {
        matrix: laplacian_2d(m, 0.0),
        rhs,
    }
}

/// The 1-D system `−u'' = f`, `u(0) = g0`, `u(1) = g1` on `s` vertices, scaled by h².
pub fn assemble_1d(f: &[f64], g0: f64, g1: f64) -> LinearSystem {
    let s = f.len();
    assert!(s >= 3, "a 1-D Poisson grid needs at least 3 points");
    let m = s - 2;
    let h2 = (1.0 / (s - 1) as f64).powi(2);
    let mut tri = sprs::TriMat::with_capacity((m, m), 3 * m);
    for r in 0..m {
        if r > 0 {
            tri.add_triplet(r, r - 1, -1.0);
        }
        tri.add_triplet(r, r, 2.0);
        if r + 1 < m {
            tri.add_triplet(r, r + 1, -1.0);
        }
    }
    let mut rhs: Vec<f64> = f[1..s - 1].iter().map(|v| h2 * v).collect();
    rhs[0] += g0;
    rhs[m - 1] += g1;
    LinearSystem {
        matrix: tri.to_csr(),
        rhs,
    }
}

/// The 3-D system on the interior of an `s³` vertex grid (seven-point stencil), with `f` and `g`
/// flattened `[x][y][z]` over all `s³` points as in [`assemble_dirichlet`]. Scaled by h².
pub fn assemble_3d(s: usize, f: &[f64], g: &[f64]) -> LinearSystem {
    assert!(
        s >= 3 && f.len() == s * s * s && g.len() == s * s * s,
        "3-D Poisson fields must have s³ values"
    );
    let m = s - 2;
    let h2 = (1.0 / (s - 1) as f64).powi(2);
    let at = |i: usize, j: usize, k: usize| (i * s + j) * s + k;
    let n = m * m * m;
    let mut rows = CsrRows::with_capacity(n, 7);
    let mut rhs = vec![0.0; n];
    for p in 0..m {
        for q in 0..m {
            for r in 0..m {
                let row = (p * m + q) * m + r;
                let (i, j, k) = (p + 1, q + 1, r + 1);
                let mut b = h2 * f[at(i, j, k)];
                // Neighbours in column order: −x, −y, −z, centre, +z, +y, +x.
                let offsets: [(i64, i64, i64); 7] = [
                    (-1, 0, 0),
                    (0, -1, 0),
                    (0, 0, -1),
                    (0, 0, 0),
                    (0, 0, 1),
                    (0, 1, 0),
                    (1, 0, 0),
                ];
                for (dp, dq, dr) in offsets {
                    if (dp, dq, dr) == (0, 0, 0) {
                        rows.push(row, 6.0);
                        continue;
                    }
                    let (np, nq, nr) = (p as i64 + dp, q as i64 + dq, r as i64 + dr);
                    let inside = [np, nq, nr].iter().all(|&v| v >= 0 && (v as usize) < m);
                    if inside {
                        rows.push((np as usize * m + nq as usize) * m + nr as usize, -1.0);
                    } else {
                        b += g[at(
                            (i as i64 + dp) as usize,
                            (j as i64 + dq) as usize,
                            (k as i64 + dr) as usize,
                        )];
                    }
                }
                rhs[row] = b;
                rows.end_row();
            }
        }
    }
    LinearSystem {
        matrix: rows.finish(),
        rhs,
    }
}

/// Parameters of a random Poisson family: the `[generate.poisson]` table.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct PoissonParams {
    /// 1, 2 or 3.
    pub dim: usize,
    /// Vertices per side including the boundary.
    pub resolution: usize,
    /// `u = 0` on the boundary instead of random data.
    pub homogeneous: bool,
    pub source: GrfParams,
    /// Field whose boundary values are the Dirichlet data (unused when `homogeneous`).
    pub boundary: GrfParams,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub solver: SolverSpec,
}

impl Default for PoissonParams {
    /// 64² points, f from the FNO Darcy field (α = 2, τ = 3), g from a smoother one (α = 3).
    fn default() -> Self {
        Self {
            dim: 2,
            resolution: 64,
            homogeneous: false,
            source: GrfParams::default(),
            boundary: GrfParams::new(3.0, 3.0, None),
            solver: SolverSpec::default(),
        }
    }
}

impl PoissonParams {
    /// The field of the Dirichlet data, or `None` for `u = 0`.
    fn dirichlet(&self) -> Option<GrfParams> {
        (!self.homogeneous).then_some(self.boundary)
    }
}

impl ProblemParams for PoissonParams {
    const NAME: &'static str = "poisson";

    fn validate(&self) -> Result<(), InvalidParam> {
        require((1..=3).contains(&self.dim), "dim", "1, 2 or 3", self.dim)?;
        // A 3-D grid of s³ points: keep it to what one machine holds.
        let max = if self.dim == 3 { 512 } else { 16384 };
        require(
            (3..=max).contains(&self.resolution),
            "resolution",
            &format!("an integer from 3 to {max} in {}-D", self.dim),
            self.resolution,
        )?;
        self.source.validate().map_err(|e| e.within("source"))?;
        self.boundary.validate().map_err(|e| e.within("boundary"))
    }

    super::solver_field!();

    fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
        super::one_solve_per_sample(Self::NAME, spec)
    }
}

enum Samplers {
    One(GrfSampler1d, Option<GrfSampler1d>),
    Two(GrfSampler2d, Option<GrfSampler2d>),
    Three(GrfSampler3d, Option<GrfSampler3d>),
}

/// Draws and solves random Poisson problems.
pub struct PoissonGenerator {
    params: PoissonParams,
    samplers: Samplers,
}

impl std::fmt::Debug for PoissonGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoissonGenerator")
            .field("params", &self.params)
            .finish()
    }
}

impl PoissonGenerator {
    pub fn new(params: PoissonParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let s = params.resolution;
        let samplers = match params.dim {
            1 => Samplers::One(
                GrfSampler1d::new(s, params.source)?,
                params
                    .dirichlet()
                    .map(|b| GrfSampler1d::new(s, b))
                    .transpose()?,
            ),
            2 => Samplers::Two(
                GrfSampler2d::new(s, params.source)?,
                params
                    .dirichlet()
                    .map(|b| GrfSampler2d::new(s, b))
                    .transpose()?,
            ),
            _ => Samplers::Three(
                GrfSampler3d::new(s, params.source)?,
                params
                    .dirichlet()
                    .map(|b| GrfSampler3d::new(s, b))
                    .transpose()?,
            ),
        };
        Ok(Self { params, samplers })
    }

    /// Source and boundary data of sample `index` (flattened; the boundary array is zero inside).
    pub fn data(&self, seed: u64, index: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = sample_rng(seed, index);
        let s = self.params.resolution;
        match &self.samplers {
            Samplers::One(f, b) => {
                let f = f.sample(&mut rng);
                let mut g = vec![0.0; s];
                if let Some(b) = b {
                    let field = b.sample(&mut rng);
                    g[0] = field[0];
                    g[s - 1] = field[s - 1];
                }
                (f, g)
            }
            Samplers::Two(f, b) => {
                let f = f.sample(&mut rng);
                let mut g = Array2::zeros((s, s));
                if let Some(b) = b {
                    let field = b.sample(&mut rng);
                    for ((i, j), v) in g.indexed_iter_mut() {
                        if i == 0 || j == 0 || i == s - 1 || j == s - 1 {
                            *v = field[[i, j]];
                        }
                    }
                }
                (f.iter().copied().collect(), g.iter().copied().collect())
            }
            Samplers::Three(f, b) => {
                let f = f.sample(&mut rng);
                let mut g = vec![0.0; s * s * s];
                if let Some(b) = b {
                    let field = b.sample(&mut rng);
                    for (p, v) in g.iter_mut().enumerate() {
                        let (i, j, k) = (p / (s * s), (p / s) % s, p % s);
                        if [i, j, k].iter().any(|&c| c == 0 || c == s - 1) {
                            *v = field[p];
                        }
                    }
                }
                (f, g)
            }
        }
    }
}

/// Solves `system` with a fresh solver of `spec`, for the families that solve one system per
/// sample. A solve that stops at its iteration cap is reported, not an error.
pub(crate) fn solve_one(
    family: &'static str,
    index: u64,
    spec: SolverSpec,
    matrix: &CsMat<f64>,
    rhs: &[f64],
) -> Result<(Vec<f64>, SampleReport), ProblemError> {
    let err = |source| ProblemError::Solver {
        family,
        index,
        source: Box::new(source),
    };
    let mut solver =
        SequenceSolver::new(spec.with_parallel(false).with_warm_start(false)).map_err(err)?;
    let mut x = vec![0.0; rhs.len()];
    let mut report = SampleReport {
        converged: true,
        steps: 1,
        ..SampleReport::default()
    };
    match solver.solve(matrix, rhs, &mut x) {
        Ok(r) => report.add_solve(&r.info),
        Err(e) => match e.info() {
            Some(info) => report.add_solve(info),
            None => return Err(err(e)),
        },
    }
    Ok((x, report))
}

impl Family for PoissonGenerator {
    fn name(&self) -> &'static str {
        PoissonParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let s = self.params.resolution;
        let shape = vec![s; self.params.dim];
        let axes = ["x", "y", "z"][..self.params.dim]
            .iter()
            .map(|&a| (a, vertex_coords(s)))
            .collect();
        SampleLayout {
            inputs: vec![("source", shape.clone()), ("boundary", shape.clone())],
            outputs: vec![("solution", shape)],
            params: vec![],
            axes,
            linear_solves: true,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let s = self.params.resolution;
        let (f, g) = self.data(seed, index);
        let m = s - 2;
        let system = match self.params.dim {
            1 => assemble_1d(&f, g[0], g[s - 1]),
            2 => {
                let fa = Array2::from_shape_vec((s, s), f.clone()).expect("s × s");
                let ga = Array2::from_shape_vec((s, s), g.clone()).expect("s × s");
                assemble_dirichlet(&fa, &ga)
            }
            _ => assemble_3d(s, &f, &g),
        };
        let (x, mut report) = solve_one(
            "poisson",
            index,
            self.params.solver,
            &system.matrix,
            &system.rhs,
        )?;
        // The solution on the whole grid: the data on the boundary, the solve inside, whose rows
        // of m interior values sit at consecutive grid points.
        let mut u = g.clone();
        for (row, chunk) in x.chunks(m).enumerate() {
            let start = match self.params.dim {
                1 => 1,
                2 => (row + 1) * s + 1,
                _ => ((row / m + 1) * s + row % m + 1) * s + 1,
            };
            u[start..start + m].copy_from_slice(chunk);
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(Sample {
            index,
            inputs: vec![f, g],
            outputs: vec![u],
            params: vec![],
            report,
        })
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

    /// u = e^x sin(πy/2) + x²y: nonzero Dirichlet data on every side.
    fn dirichlet_error(s: usize) -> f64 {
        let u = |x: f64, y: f64| x.exp() * (PI * y / 2.0).sin() + x * x * y;
        // −Δu = −e^x sin(πy/2)(1 − π²/4) − 2y.
        let f =
            |x: f64, y: f64| -(x.exp()) * (PI * y / 2.0).sin() * (1.0 - PI * PI / 4.0) - 2.0 * y;
        let c = vertex_coords(s);
        let fa = Array2::from_shape_fn((s, s), |(i, j)| f(c[i], c[j]));
        let ga = Array2::from_shape_fn((s, s), |(i, j)| u(c[i], c[j]));
        let sys = assemble_dirichlet(&fa, &ga);
        let m = s - 2;
        let mut x = vec![0.0; m * m];
        cg(
            &CsrOperator::new(&sys.matrix),
            &Identity,
            &sys.rhs,
            &mut x,
            &SolveParams::new(1e-13, 10_000),
        )
        .unwrap();
        x.iter()
            .enumerate()
            .map(|(k, v)| (v - u(c[k / m + 1], c[k % m + 1])).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn dirichlet_data_converge_at_second_order() {
        let (e1, e2) = (dirichlet_error(17), dirichlet_error(33));
        let order = (e1 / e2).log2();
        assert!(order > 1.9 && order < 2.1, "order {order} ({e1}, {e2})");
    }

    #[test]
    fn one_dimensional_problem_converges_at_second_order() {
        let err = |s: usize| {
            let c = vertex_coords(s);
            let u = |x: f64| (3.0 * x).sin() + 2.0 * x;
            let f: Vec<f64> = c.iter().map(|&x| 9.0 * (3.0 * x).sin()).collect();
            let sys = assemble_1d(&f, u(0.0), u(1.0));
            let mut x = vec![0.0; s - 2];
            cg(
                &CsrOperator::new(&sys.matrix),
                &Identity,
                &sys.rhs,
                &mut x,
                &SolveParams::new(1e-14, 10_000),
            )
            .unwrap();
            x.iter()
                .enumerate()
                .map(|(k, v)| (v - u(c[k + 1])).abs())
                .fold(0.0, f64::max)
        };
        let order = (err(17) / err(33)).log2();
        assert!(order > 1.9 && order < 2.1, "order {order}");
    }

    #[test]
    fn generated_sample_carries_its_boundary_data() {
        use crate::krylov::SolveParams;
        use crate::sequence::{Method, PrecondKind};
        let params = PoissonParams {
            dim: 2,
            resolution: 12,
            source: GrfParams::default(),
            homogeneous: false,
            boundary: GrfParams::new(3.0, 3.0, None),
            solver: SolverSpec::new(
                Method::Cg,
                PrecondKind::Jacobi,
                SolveParams::new(1e-10, 1000),
            ),
        };
        let g = PoissonGenerator::new(params).unwrap();
        let smp = g.generate(0, 4).unwrap();
        assert!(smp.report.converged);
        let (u, b) = (&smp.outputs[0], &smp.inputs[1]);
        for i in 0..12 {
            assert_eq!(u[i], b[i]);
            assert_eq!(u[11 * 12 + i], b[11 * 12 + i]);
            assert_eq!(u[i * 12], b[i * 12]);
        }
        assert!(b[0] != 0.0 && b[5 * 12 + 5] == 0.0);
    }

    #[test]
    fn three_dimensional_problem_converges_at_second_order() {
        // u = e^x sin(πy/2) cos z: −Δu = (π²/4) u, nonzero data on every face.
        let err = |s: usize| {
            let c = vertex_coords(s);
            let u = |x: f64, y: f64, z: f64| x.exp() * (PI * y / 2.0).sin() * z.cos();
            let idx = |p: usize| (c[p / (s * s)], c[(p / s) % s], c[p % s]);
            let f: Vec<f64> = (0..s * s * s)
                .map(|p| {
                    let (x, y, z) = idx(p);
                    PI * PI / 4.0 * u(x, y, z)
                })
                .collect();
            let g: Vec<f64> = (0..s * s * s)
                .map(|p| {
                    let (x, y, z) = idx(p);
                    u(x, y, z)
                })
                .collect();
            let sys = assemble_3d(s, &f, &g);
            let m = s - 2;
            let mut x = vec![0.0; m * m * m];
            cg(
                &CsrOperator::new(&sys.matrix),
                &Identity,
                &sys.rhs,
                &mut x,
                &SolveParams::new(1e-13, 10_000),
            )
            .unwrap();
            x.iter()
                .enumerate()
                .map(|(k, v)| {
                    let (p, q, r) = (k / (m * m) + 1, (k / m) % m + 1, k % m + 1);
                    (v - u(c[p], c[q], c[r])).abs()
                })
                .fold(0.0, f64::max)
        };
        let order = (err(9) / err(17)).log2();
        assert!(order > 1.9 && order < 2.1, "order {order}");
    }

    #[test]
    fn generated_3d_sample_keeps_its_boundary_and_solves_inside() {
        use crate::krylov::SolveParams;
        use crate::sequence::{Method, PrecondKind};
        let s = 8;
        let params = PoissonParams {
            dim: 3,
            resolution: s,
            source: GrfParams::default(),
            homogeneous: false,
            boundary: GrfParams::new(3.0, 3.0, None),
            solver: SolverSpec::new(
                Method::Cg,
                PrecondKind::Jacobi,
                SolveParams::new(1e-10, 1000),
            ),
        };
        let g = PoissonGenerator::new(params).unwrap();
        let smp = g.generate(0, 1).unwrap();
        assert!(smp.report.converged);
        let (u, b, f) = (&smp.outputs[0], &smp.inputs[1], &smp.inputs[0]);
        let at = |i: usize, j: usize, k: usize| (i * s + j) * s + k;
        assert_eq!(u[at(0, 3, 4)], b[at(0, 3, 4)]);
        assert_eq!(u[at(5, 7, 2)], b[at(5, 7, 2)]);
        assert_eq!(b[at(3, 3, 3)], 0.0);
        // The discrete equation holds at an interior point.
        let h2 = (1.0 / (s - 1) as f64).powi(2);
        let (i, j, k) = (3, 4, 2);
        let lap = 6.0 * u[at(i, j, k)]
            - u[at(i - 1, j, k)]
            - u[at(i + 1, j, k)]
            - u[at(i, j - 1, k)]
            - u[at(i, j + 1, k)]
            - u[at(i, j, k - 1)]
            - u[at(i, j, k + 1)];
        assert!(
            (lap - h2 * f[at(i, j, k)]).abs() < 1e-8,
            "{lap} vs {}",
            h2 * f[at(i, j, k)]
        );
    }
}
