//! 2-D Darcy flow `−∇·(a ∇u) = f` on the unit square with `u = 0` on the boundary.
//!
//! Flux-form 5-point finite differences: the coefficient on the face between two unknowns is the
//! harmonic mean of their values, which keeps the flux continuous across jumps of `a` (the
//! thresholded FNO fields jump by a factor 4) and is second-order accurate for smooth `a`.

use super::{Family, LinearSystem, ProblemError, ProblemParams, Sample, SampleLayout};
use crate::field::{Coefficient, FieldError, GrfSampler2d};
use crate::grid::{Centring, Grid2d};
use crate::krylov::{SolveInfo, SolveParams};
use crate::linalg::CsrRows;
use crate::param::{require, InvalidParam};
use crate::rng::sample_rng;
use crate::sequence::{Method, PrecondKind, SequenceError, SequenceSolver, SolverSpec};
use ndarray::Array2;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum DarcyError {
    #[error("Darcy: resolution must be at least 3, got {resolution}")]
    ResolutionTooSmall { resolution: usize },
    #[error("Darcy: {name} has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        name: &'static str,
        expected: (usize, usize),
        got: (usize, usize),
    },
    #[error("Darcy: coefficient at ({ix}, {iy}) is {value}; it must be positive and finite")]
    BadCoefficient { ix: usize, iy: usize, value: f64 },
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("Darcy sample {index}: {source}")]
    Solver {
        index: u64,
        #[source]
        source: Box<SequenceError>,
    },
}

fn harmonic(a: f64, b: f64) -> f64 {
    2.0 * a * b / (a + b)
}

/// Number of unknowns per side.
fn unknowns_per_side(grid: &Grid2d) -> usize {
    match grid.centring {
        Centring::Vertex => grid.resolution - 2,
        Centring::Cell => grid.resolution,
    }
}

/// Assembles `−∇·(a∇u) = f` with zero Dirichlet data. `a` and `f` are sampled at the grid's points
/// (`s × s`); on a vertex grid their boundary values of `f` are unused.
pub fn assemble(
    grid: &Grid2d,
    a: &Array2<f64>,
    f: &Array2<f64>,
) -> Result<LinearSystem, DarcyError> {
    let s = grid.resolution;
    if s < 3 {
        return Err(DarcyError::ResolutionTooSmall { resolution: s });
    }
    for (name, arr) in [("coefficient", a), ("source", f)] {
        if arr.dim() != (s, s) {
            return Err(DarcyError::ShapeMismatch {
                name,
                expected: (s, s),
                got: arr.dim(),
            });
        }
    }
    if let Some(((ix, iy), &value)) = a.indexed_iter().find(|(_, &v)| !(v > 0.0 && v.is_finite())) {
        return Err(DarcyError::BadCoefficient { ix, iy, value });
    }
    let inv_h2 = 1.0 / (grid.h() * grid.h());
    let m = unknowns_per_side(grid);
    // Offset from unknown index to grid index along each axis.
    let off = match grid.centring {
        Centring::Vertex => 1,
        Centring::Cell => 0,
    };
    // Columns in increasing order within a row: up, left, centre, right, down.
    let n = m * m;
    let mut rows = CsrRows::with_capacity(n, 5);
    let mut rhs = vec![0.0; n];
    for p in 0..m {
        for q in 0..m {
            let (i, j) = (p + off, q + off);
            let row = p * m + q;
            let here = a[[i, j]];
            let mut diag = 0.0;
            let mut diag_at = 0;
            for (k, (dp, dq)) in [(-1i64, 0i64), (0, -1), (0, 1), (1, 0)]
                .into_iter()
                .enumerate()
            {
                if k == 2 {
                    // The centre sits between left and right; its value is known after the loop.
                    diag_at = rows.push(row, 0.0);
                }
                let (np, nq) = (p as i64 + dp, q as i64 + dq);
                let inside = np >= 0 && nq >= 0 && (np as usize) < m && (nq as usize) < m;
                if inside {
                    let (ni, nj) = (np as usize + off, nq as usize + off);
                    let w = harmonic(here, a[[ni, nj]]) * inv_h2;
                    diag += w;
                    rows.push(np as usize * m + nq as usize, -w);
                } else {
                    diag += match grid.centring {
                        // The boundary vertex is a full spacing away; its value is zero.
                        Centring::Vertex => {
                            let (ni, nj) = ((i as i64 + dp) as usize, (j as i64 + dq) as usize);
                            harmonic(here, a[[ni, nj]]) * inv_h2
                        }
                        // The boundary face is half a cell away.
                        Centring::Cell => 2.0 * here * inv_h2,
                    };
                }
            }
            rows.set(diag_at, diag);
            rows.end_row();
            rhs[row] = f[[i, j]];
        }
    }
    Ok(LinearSystem {
        matrix: rows.finish(),
        rhs,
    })
}

/// Places the unknowns back on the `s × s` grid (zero on a vertex grid's boundary).
pub fn scatter(grid: &Grid2d, x: &[f64]) -> Array2<f64> {
    let s = grid.resolution;
    let m = unknowns_per_side(grid);
    let off = s - m;
    let off = off / 2;
    let mut u = Array2::zeros((s, s));
    for p in 0..m {
        for q in 0..m {
            u[[p + off, q + off]] = x[p * m + q];
        }
    }
    u
}

/// The SKR paper's Darcy matrix, `A = L·diag(K)` with L the five-point Laplacian (Dirichlet, no
/// 1/h²) on the `m × m` interior grid where `K` is sampled, and the constant source `f` scaled by
/// h². Non-symmetric; it is the form of the SKR benchmarks, not a flux-conservative discretisation
/// (use [`assemble`] for that).
pub fn assemble_paper_form(k: &Array2<f64>, f: f64) -> Result<LinearSystem, DarcyError> {
    let m = k.nrows();
    if k.ncols() != m {
        return Err(DarcyError::ShapeMismatch {
            name: "coefficient",
            expected: (m, m),
            got: k.dim(),
        });
    }
    if let Some(((ix, iy), &value)) = k
        .indexed_iter()
        .find(|(_, v)| !(**v > 0.0 && v.is_finite()))
    {
        return Err(DarcyError::BadCoefficient { ix, iy, value });
    }
    let kv: Vec<f64> = k.iter().copied().collect();
    let h = 1.0 / (m + 1) as f64;
    Ok(LinearSystem {
        matrix: super::laplacian_2d_with(m, |_| 0.0, |j| kv[j]),
        rhs: vec![f * h * h; m * m],
    })
}

/// Parameters of a random Darcy problem family: the `[generate.darcy]` table.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct DarcyParams {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub grid: Grid2d,
    /// Constant source term f.
    pub forcing: f64,
    /// Which discretisation.
    pub form: DarcyForm,
    pub coefficient: Coefficient,
    /// Method, preconditioner and stopping rule of each solve (`[generate.solver]`).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub solver: SolverSpec,
}

/// The two Darcy discretisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum DarcyForm {
    /// Flux form [`assemble`]: SPD, flux-conservative.
    #[default]
    Flux,
    /// The SKR paper's `A = L·diag(K)` ([`assemble_paper_form`]): non-symmetric; vertex grids only.
    Paper,
}

impl Default for DarcyParams {
    /// The FNO Darcy benchmark at 64 × 64.
    fn default() -> Self {
        Self {
            grid: Grid2d::new(64, Centring::Vertex),
            coefficient: Coefficient::default(),
            forcing: 1.0,
            form: DarcyForm::Flux,
            solver: SolverSpec::new(Method::Cg, PrecondKind::Jacobi, SolveParams::default()),
        }
    }
}

impl ProblemParams for DarcyParams {
    const NAME: &'static str = "darcy";
    const SEQUENCES: bool = true;

    fn validate(&self) -> Result<(), InvalidParam> {
        let s = self.grid.resolution;
        require(
            (3..=8192).contains(&s),
            "resolution",
            "an integer from 3 to 8192",
            s,
        )?;
        require(
            self.forcing.is_finite(),
            "forcing",
            "a finite number",
            self.forcing,
        )?;
        require(
            self.form == DarcyForm::Flux || self.grid.centring == Centring::Vertex,
            "centring",
            "\"vertex\": form = \"paper\" (A = L·diag(K)) is defined on a vertex grid",
            format!("\"{}\"", self.grid.centring),
        )?;
        self.coefficient
            .validate()
            .map_err(|e| e.within("coefficient"))
    }

    super::solver_field!();

    fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
        if spec.learns_omega() && spec.carries_state() {
            return Err(InvalidParam::new(
                "omega",
                "a number in (0, 2): a learned ω needs a method that solves each sample on its own, without recycling or warm starts",
                "\"learned\"",
            ));
        }
        Ok(())
    }
}

/// One solved Darcy sample.
#[derive(Debug, Clone)]
pub struct DarcySample {
    pub index: u64,
    pub coefficient: Array2<f64>,
    pub solution: Array2<f64>,
    /// The solver's report; `converged` is false when it hit its iteration cap.
    pub info: SolveInfo,
    /// Wall time of assembly and solve.
    pub seconds: f64,
}

/// Draws and solves random Darcy problems; sample `i` of seed `s` depends only on `(s, i)`.
#[derive(Debug)]
pub struct DarcyGenerator {
    params: DarcyParams,
    sampler: GrfSampler2d,
}

impl DarcyGenerator {
    pub fn new(params: DarcyParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let sampler = GrfSampler2d::new(params.grid.resolution, params.coefficient.field)?;
        Ok(Self { params, sampler })
    }

    pub fn params(&self) -> &DarcyParams {
        &self.params
    }

    /// The coefficient field of sample `index`.
    pub fn coefficient(&self, seed: u64, index: u64) -> Array2<f64> {
        let mut a = self.sampler.sample(&mut sample_rng(seed, index));
        self.params.coefficient.transform.apply(&mut a);
        a
    }

    /// The coefficient and the assembled system of sample `index`.
    pub fn system(&self, seed: u64, index: u64) -> Result<(Array2<f64>, LinearSystem), DarcyError> {
        let coefficient = self.coefficient(seed, index);
        let s = self.params.grid.resolution;
        let system = match self.params.form {
            DarcyForm::Flux => {
                let f = Array2::from_elem((s, s), self.params.forcing);
                assemble(&self.params.grid, &coefficient, &f)?
            }
            DarcyForm::Paper => assemble_paper_form(
                &coefficient
                    .slice(ndarray::s![1..s - 1, 1..s - 1])
                    .to_owned(),
                self.params.forcing,
            )?,
        };
        Ok((coefficient, system))
    }

    /// Draws and solves sample `index` on its own (no recycling, no warm start). A solve that hits
    /// its iteration cap is returned with `info.converged == false`; other solver failures are
    /// errors.
    pub fn generate(&self, seed: u64, index: u64) -> Result<DarcySample, DarcyError> {
        let spec = self
            .params
            .solver
            .with_parallel(false)
            .with_warm_start(false);
        let mut solver = SequenceSolver::new(spec).map_err(|source| DarcyError::Solver {
            index,
            source: Box::new(source),
        })?;
        self.generate_with(seed, index, &mut solver, spec.precond)
    }

    /// Draws sample `index` and solves it with `solver` (which may carry a recycle space from the
    /// samples it solved before) and `precond` (e.g. an SSOR ω chosen per sample by a learner).
    pub fn generate_with(
        &self,
        seed: u64,
        index: u64,
        solver: &mut SequenceSolver,
        precond: PrecondKind,
    ) -> Result<DarcySample, DarcyError> {
        let start = Instant::now();
        let (coefficient, system) = self.system(seed, index)?;
        let mut x = vec![0.0; system.rhs.len()];
        let info = match solver.solve_with(&system.matrix, &system.rhs, &mut x, precond) {
            Ok(report) => report.info,
            Err(e) => match e.info() {
                Some(info) => info.clone(),
                None => {
                    return Err(DarcyError::Solver {
                        index,
                        source: Box::new(e),
                    })
                }
            },
        };
        Ok(DarcySample {
            index,
            coefficient,
            solution: scatter(&self.params.grid, &x),
            info,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Fourier modes per axis kept as a sample's features for ordering (|k| ≤ 6: 182 numbers). The
/// Euclidean distance between these is the L2 distance between the low-pass-filtered fields
/// (Parseval), so the greedy tour follows the SKR paper's field distance without holding every
/// field in memory.
const ORDER_MODES: usize = 6;

impl Family for DarcyGenerator {
    fn name(&self) -> &'static str {
        DarcyParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let s = self.params.grid.resolution;
        let c = self.params.grid.coords();
        SampleLayout {
            inputs: vec![("coefficient", vec![s, s])],
            outputs: vec![("solution", vec![s, s])],
            params: vec![],
            axes: vec![("x", c.clone()), ("y", c)],
            linear_solves: true,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        Ok(DarcyGenerator::generate(self, seed, index)?.into())
    }

    fn order_features(&self, seed: u64, index: u64) -> Option<Vec<f64>> {
        Some(crate::sequence::low_modes(
            self.coefficient(seed, index).view(),
            ORDER_MODES,
        ))
    }

    fn generate_with(
        &self,
        seed: u64,
        index: u64,
        solver: &mut SequenceSolver,
        precond: PrecondKind,
    ) -> Result<Sample, ProblemError> {
        Ok(DarcyGenerator::generate_with(self, seed, index, solver, precond)?.into())
    }
}

impl From<DarcySample> for Sample {
    fn from(d: DarcySample) -> Self {
        let mut report = super::SampleReport {
            converged: true,
            steps: 1,
            seconds: d.seconds,
            ..Default::default()
        };
        report.add_solve(&d.info);
        Self {
            index: d.index,
            inputs: vec![d.coefficient.into_raw_vec_and_offset().0],
            outputs: vec![d.solution.into_raw_vec_and_offset().0],
            params: vec![],
            report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::cg;
    use crate::linalg::{CsrOperator, Jacobi};
    use std::f64::consts::PI;

    /// Max-norm error against u = sin(πx) sin(πy) with a = 1 + ½ sin(2πx) cos(2πy).
    fn manufactured_error(grid: Grid2d) -> f64 {
        let a_fn = |x: f64, y: f64| 1.0 + 0.5 * (2.0 * PI * x).sin() * (2.0 * PI * y).cos();
        let u_fn = |x: f64, y: f64| (PI * x).sin() * (PI * y).sin();
        let f_fn = |x: f64, y: f64| {
            let ax = PI * (2.0 * PI * x).cos() * (2.0 * PI * y).cos();
            let ay = -PI * (2.0 * PI * x).sin() * (2.0 * PI * y).sin();
            let ux = PI * (PI * x).cos() * (PI * y).sin();
            let uy = PI * (PI * x).sin() * (PI * y).cos();
            -(ax * ux + ay * uy) + 2.0 * PI * PI * a_fn(x, y) * u_fn(x, y)
        };
        let c = grid.coords();
        let s = grid.resolution;
        let a = Array2::from_shape_fn((s, s), |(i, j)| a_fn(c[i], c[j]));
        let f = Array2::from_shape_fn((s, s), |(i, j)| f_fn(c[i], c[j]));
        let sys = assemble(&grid, &a, &f).unwrap();
        let mut x = vec![0.0; sys.rhs.len()];
        let op = CsrOperator::new(&sys.matrix);
        cg(
            &op,
            &Jacobi::new(&sys.matrix).unwrap(),
            &sys.rhs,
            &mut x,
            &SolveParams::new(1e-11, 20_000),
        )
        .unwrap();
        let u = scatter(&grid, &x);
        u.indexed_iter()
            .map(|((i, j), &v)| (v - u_fn(c[i], c[j])).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn darcy_vertex_grid_converges_at_second_order() {
        let coarse = manufactured_error(Grid2d::new(33, Centring::Vertex));
        let fine = manufactured_error(Grid2d::new(65, Centring::Vertex));
        let order = (coarse / fine).log2();
        assert!(coarse < 5e-3, "coarse error {coarse}");
        assert!(
            order > 1.9 && order < 2.2,
            "observed order {order} ({coarse} -> {fine})"
        );
    }

    #[test]
    fn darcy_cell_grid_converges_at_second_order() {
        let coarse = manufactured_error(Grid2d::new(32, Centring::Cell));
        let fine = manufactured_error(Grid2d::new(64, Centring::Cell));
        let order = (coarse / fine).log2();
        assert!(coarse < 1e-2, "coarse error {coarse}");
        assert!(
            order > 1.8 && order < 2.3,
            "observed order {order} ({coarse} -> {fine})"
        );
    }

    #[test]
    fn darcy_matrix_is_symmetric_with_positive_diagonal() {
        let grid = Grid2d::new(12, Centring::Vertex);
        let gen = DarcyGenerator::new(DarcyParams {
            grid,
            ..Default::default()
        })
        .unwrap();
        let a = gen.coefficient(3, 1);
        let sys = assemble(&grid, &a, &Array2::ones((12, 12))).unwrap();
        let m = &sys.matrix;
        for (v, (i, j)) in m.iter() {
            let t = m.get(j, i).copied().unwrap_or(f64::NAN);
            assert!(
                (v - t).abs() < 1e-9 * v.abs(),
                "A[{i},{j}] = {v} but A[{j},{i}] = {t}"
            );
            if i == j {
                assert!(*v > 0.0);
            }
        }
    }

    #[test]
    fn darcy_sample_residual_meets_tolerance_and_is_reproducible() {
        let params = DarcyParams {
            grid: Grid2d::new(24, Centring::Vertex),
            solver: SolverSpec::new(
                Method::Cg,
                PrecondKind::Jacobi,
                SolveParams::new(1e-9, 5000),
            ),
            ..Default::default()
        };
        let gen = DarcyGenerator::new(params).unwrap();
        let s1 = gen.generate(42, 7).unwrap();
        let s2 = gen.generate(42, 7).unwrap();
        assert!(s1.info.converged && s1.info.rel_residual <= 1e-9);
        assert_eq!(s1.solution, s2.solution);
        assert_eq!(s1.coefficient, s2.coefficient);
        // The solution is positive inside (f = 1 > 0, maximum principle) and zero on the boundary.
        assert!(s1.solution[[12, 12]] > 0.0);
        assert_eq!(s1.solution[[0, 5]], 0.0);
    }

    #[test]
    fn ssor_preconditioned_samples_match_jacobi_samples_in_fewer_iterations() {
        let params = DarcyParams {
            grid: Grid2d::new(32, Centring::Vertex),
            solver: SolverSpec::new(
                Method::Cg,
                PrecondKind::Jacobi,
                SolveParams::new(1e-10, 5000),
            ),
            ..Default::default()
        };
        let gen = DarcyGenerator::new(params).unwrap();
        let j = gen.generate(1, 2).unwrap();
        let mut solver = SequenceSolver::new(gen.params().solver).unwrap();
        let s = gen
            .generate_with(1, 2, &mut solver, PrecondKind::ssor(1.5))
            .unwrap();
        assert!(s.info.converged && s.info.rel_residual <= 1e-10);
        let diff = (&j.solution - &s.solution)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        let scale = j.solution.fold(0.0f64, |a, &b| a.max(b));
        assert!(
            diff <= 1e-7 * scale,
            "solutions differ by {diff} (max {scale})"
        );
        assert!(
            s.info.iterations * 2 < j.info.iterations,
            "{} vs {}",
            s.info.iterations,
            j.info.iterations
        );
    }

    #[test]
    fn darcy_iteration_cap_is_reported_not_hidden() {
        let params = DarcyParams {
            grid: Grid2d::new(32, Centring::Vertex),
            solver: SolverSpec::new(Method::Cg, PrecondKind::Jacobi, SolveParams::new(1e-12, 3)),
            ..Default::default()
        };
        let sample = DarcyGenerator::new(params).unwrap().generate(0, 0).unwrap();
        assert!(!sample.info.converged);
        assert_eq!(sample.info.iterations, 3);
        assert!(sample.info.rel_residual > 1e-12);
    }

    #[test]
    fn recycled_gcrodr_solves_a_darcy_chain_with_fewer_iterations_than_fresh_solves() {
        let params = DarcyParams {
            grid: Grid2d::new(34, Centring::Vertex),
            coefficient: Coefficient {
                transform: crate::field::CoefficientTransform::LogNormal,
                ..Coefficient::default()
            },
            solver: SolverSpec::new(
                Method::GcroDr {
                    restart: 30,
                    recycle: 10,
                    update: crate::krylov::RecycleUpdate::EveryCycle,
                },
                PrecondKind::None,
                SolveParams::new(1e-8, 20_000),
            ),
            ..Default::default()
        };
        let gen = DarcyGenerator::new(params).unwrap();
        let mut chain = SequenceSolver::new(gen.params().solver).unwrap();
        let (mut fresh, mut recycled) = (0, 0);
        for i in 0..5 {
            let alone = gen.generate(3, i).unwrap();
            let along = gen
                .generate_with(3, i, &mut chain, PrecondKind::None)
                .unwrap();
            assert!(alone.info.converged && along.info.converged);
            assert!(along.info.rel_residual <= 1e-8);
            fresh += alone.info.matvecs;
            recycled += along.info.matvecs;
        }
        assert!(
            (recycled as f64) < 0.8 * fresh as f64,
            "recycled {recycled} vs fresh {fresh} mat-vecs"
        );
    }

    #[test]
    fn darcy_rejects_bad_input() {
        let grid = Grid2d::new(8, Centring::Cell);
        let a = Array2::from_elem((8, 8), 1.0);
        let f = Array2::from_elem((7, 8), 1.0);
        assert!(matches!(
            assemble(&grid, &a, &f),
            Err(DarcyError::ShapeMismatch { name: "source", .. })
        ));
        let mut bad = a.clone();
        bad[[2, 3]] = -1.0;
        assert_eq!(
            assemble(&grid, &bad, &a).unwrap_err(),
            DarcyError::BadCoefficient {
                ix: 2,
                iy: 3,
                value: -1.0
            }
        );
    }
}
