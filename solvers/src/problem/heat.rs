//! 2-D heat equation `u_t = κ(t) ∇·(a(x)∇u) + f` on the unit square with `u = 0` on the boundary.
//!
//! Space: the flux-form five-point operator of [`super::darcy::assemble`] on a vertex grid. Time:
//! the θ-scheme, implicit Euler (θ = 1) or Crank–Nicolson (θ = ½),
//!
//! `(I + θΔt κ(tₙ₊₁) L) uⁿ⁺¹ = (I − (1 − θ)Δt κ(tₙ) L) uⁿ + Δt f`,
//!
//! so a trajectory is a *sequence* of related SPD systems, one per step, with the same sparsity and
//! a matrix that changes when κ does. The steps are solved by one [`SequenceSolver`], so a
//! recycling method (GCRO-DR, recycled CG) carries its subspace from step to step, and each solve
//! starts from the previous time level.

use super::darcy::{assemble, scatter};
use super::{
    vertex_coords, Family, ProblemError, ProblemParams, Sample, SampleLayout, SampleReport,
};
use crate::field::{Coefficient, GrfParams, GrfSampler2d};
use crate::grid::{Centring, Grid2d};
use crate::param::{positive, require, InvalidParam};
use crate::rng::sample_rng;
use crate::sequence::{PrecondKind, SequenceSolver, SolverSpec};
use ndarray::Array2;
use sprs::CsMat;
use std::f64::consts::PI;
use std::time::Instant;

/// The time discretisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TimeScheme {
    ImplicitEuler,
    #[default]
    CrankNicolson,
}

impl TimeScheme {
    pub fn theta(self) -> f64 {
        match self {
            TimeScheme::ImplicitEuler => 1.0,
            TimeScheme::CrankNicolson => 0.5,
        }
    }
}

/// The diffusivity's time dependence κ(t). In a config: a number, or `"switching"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Diffusivity {
    Constant(f64),
    /// `max(0.1 sin 2πt, −10 sin 2πt)`: slow diffusion for half a period, fast for the other half
    /// (the learned-relaxation paper's heat sequence).
    Switching,
}

impl crate::param::NumberOrWord for Diffusivity {
    const WORD: &'static str = "switching";
    const EXPECTED: &'static str =
        "a number ≥ 0, or \"switching\" for max(0.1 sin 2πt, −10 sin 2πt)";
    fn number(&self) -> Option<f64> {
        match self {
            Diffusivity::Constant(k) => Some(*k),
            Diffusivity::Switching => None,
        }
    }
    fn from_number(k: Option<f64>) -> Self {
        k.map_or(Diffusivity::Switching, Diffusivity::Constant)
    }
}

crate::param::number_or_word!(Diffusivity);

impl Diffusivity {
    pub fn at(self, t: f64) -> f64 {
        match self {
            Diffusivity::Constant(k) => k,
            Diffusivity::Switching => {
                let s = (2.0 * PI * t).sin();
                (0.1 * s).max(-10.0 * s)
            }
        }
    }
}

/// Advances one heat trajectory.
#[derive(Debug, Clone)]
pub struct HeatStepper {
    grid: Grid2d,
    laplacian: CsMat<f64>,
    /// Position of each row's diagonal in the CSR data.
    diagonal: Vec<usize>,
    scheme: TimeScheme,
    dt: f64,
    kappa: Diffusivity,
    source: f64,
}

impl HeatStepper {
    /// `a` is the spatial coefficient on the `s × s` vertex grid.
    pub fn new(
        grid: Grid2d,
        a: &Array2<f64>,
        scheme: TimeScheme,
        dt: f64,
        kappa: Diffusivity,
        source: f64,
    ) -> Result<Self, ProblemError> {
        let s = grid.resolution;
        let laplacian = assemble(&grid, a, &Array2::zeros((s, s)))?.matrix;
        let diagonal = (0..laplacian.rows())
            .map(|r| {
                let (start, end) = (laplacian.indptr().index(r), laplacian.indptr().index(r + 1));
                start
                    + laplacian.indices()[start..end]
                        .iter()
                        .position(|&c| c == r)
                        .expect("stencil has a diagonal")
            })
            .collect();
        Ok(Self {
            grid,
            laplacian,
            diagonal,
            scheme,
            dt,
            kappa,
            source,
        })
    }

    /// Takes `steps` steps from the interior values `u` (row-major `(s−2)²`), solving each with
    /// `solver`, and calls `snapshot(step, u)` every `every` steps. The report sums the solves.
    pub fn run(
        &self,
        u: &mut [f64],
        steps: usize,
        every: usize,
        solver: &mut SequenceSolver,
        mut snapshot: impl FnMut(usize, &[f64]),
    ) -> Result<SampleReport, crate::sequence::SequenceError> {
        let theta = self.scheme.theta();
        let n = u.len();
        let mut a = self.laplacian.clone();
        let mut rhs = vec![0.0; n];
        let mut lu = vec![0.0; n];
        let mut report = SampleReport {
            converged: true,
            steps,
            ..SampleReport::default()
        };
        for step in 1..=steps {
            let (t0, t1) = ((step - 1) as f64 * self.dt, step as f64 * self.dt);
            let implicit = theta * self.dt * self.kappa.at(t1);
            let explicit = (1.0 - theta) * self.dt * self.kappa.at(t0);
            for (d, &l) in a.data_mut().iter_mut().zip(self.laplacian.data()) {
                *d = implicit * l;
            }
            for &p in &self.diagonal {
                a.data_mut()[p] += 1.0;
            }
            if explicit != 0.0 {
                crate::linalg::csr_matvec_serial(&self.laplacian, u, &mut lu);
            }
            for i in 0..n {
                rhs[i] = u[i] - explicit * lu[i] + self.dt * self.source;
            }
            // The previous level is the initial guess.
            match solver.solve_with(&a, &rhs, u, solver.spec().precond) {
                Ok(r) => report.add_solve(&r.info),
                Err(e) => match e.info() {
                    Some(info) => report.add_solve(info),
                    None => return Err(e),
                },
            }
            if step % every == 0 {
                snapshot(step, u);
            }
        }
        Ok(report)
    }

    pub fn grid(&self) -> &Grid2d {
        &self.grid
    }
}

/// Parameters of a random heat family: the `[generate.heat]` table.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct HeatParams {
    /// Vertices per side including the boundary.
    pub resolution: usize,
    pub scheme: TimeScheme,
    pub dt: f64,
    pub steps: usize,
    /// Snapshots stored every this many steps (the trajectory has `steps / every` frames);
    /// `None`: every [`DEFAULT_EVERY`] steps, or only the last step when there are fewer.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub every: Option<usize>,
    pub kappa: Diffusivity,
    /// Constant source f.
    pub source: f64,
    /// Initial condition: a random field times sin(πx) sin(πy), so it meets the boundary data.
    pub initial: GrfParams,
    /// Spatial coefficient a(x): `None` for a = 1, else a transformed random field.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub coefficient: Option<Coefficient>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub solver: SolverSpec,
}

/// Steps between stored frames unless `every` is given.
pub const DEFAULT_EVERY: usize = 10;

impl HeatParams {
    /// Steps between stored frames.
    pub fn every(&self) -> usize {
        self.every.unwrap_or(DEFAULT_EVERY.min(self.steps))
    }
}

impl Default for HeatParams {
    /// 100 Crank–Nicolson steps of 1e-3 on a 64² grid, a snapshot every 10, κ = 1, a = 1.
    fn default() -> Self {
        Self {
            resolution: 64,
            scheme: TimeScheme::CrankNicolson,
            dt: 1e-3,
            steps: 100,
            every: None,
            kappa: Diffusivity::Constant(1.0),
            source: 0.0,
            initial: GrfParams::default(),
            coefficient: None,
            solver: SolverSpec::default(),
        }
    }
}

impl ProblemParams for HeatParams {
    const NAME: &'static str = "heat";

    fn settle(&mut self) {
        self.every = Some(self.every());
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        require(
            (3..=16384).contains(&self.resolution),
            "resolution",
            "an integer from 3 to 16384",
            self.resolution,
        )?;
        require(positive(self.dt), "dt", "a positive number", self.dt)?;
        require(self.steps >= 1, "steps", "an integer ≥ 1", self.steps)?;
        let every = self.every();
        require(
            every >= 1 && self.steps.is_multiple_of(every),
            "every",
            &format!("an integer ≥ 1 that divides steps = {}", self.steps),
            every,
        )?;
        if let Diffusivity::Constant(k) = self.kappa {
            require(
                k >= 0.0 && k.is_finite(),
                "kappa",
                "a number ≥ 0, or \"switching\" for max(0.1 sin 2πt, −10 sin 2πt)",
                k,
            )?;
        }
        require(
            self.source.is_finite(),
            "source",
            "a finite number",
            self.source,
        )?;
        self.initial.validate().map_err(|e| e.within("initial"))?;
        match &self.coefficient {
            Some(c) => c.validate().map_err(|e| e.within("coefficient")),
            None => Ok(()),
        }
    }

    super::solver_field!();

    /// Each trajectory is one sequence of systems: warm starts and recycling carry from step to
    /// step within it.
    fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
        super::no_learned_omega(Self::NAME, spec)
    }
}

/// Draws and solves random heat trajectories.
#[derive(Debug)]
pub struct HeatGenerator {
    params: HeatParams,
    grid: Grid2d,
    initial: GrfSampler2d,
    coefficient: Option<GrfSampler2d>,
}

impl HeatGenerator {
    pub fn new(params: HeatParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let grid = Grid2d::new(params.resolution, Centring::Vertex);
        Ok(Self {
            initial: GrfSampler2d::new(params.resolution, params.initial)?,
            coefficient: params
                .coefficient
                .map(|c| GrfSampler2d::new(params.resolution, c.field))
                .transpose()?,
            grid,
            params,
        })
    }

    pub fn params(&self) -> &HeatParams {
        &self.params
    }
}

impl Family for HeatGenerator {
    fn name(&self) -> &'static str {
        HeatParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let p = &self.params;
        let s = p.resolution;
        let mut inputs = vec![("initial_condition", vec![s, s])];
        if p.coefficient.is_some() {
            inputs.push(("coefficient", vec![s, s]));
        }
        let frames = p.steps / p.every();
        SampleLayout {
            inputs,
            outputs: vec![("trajectory", vec![frames, s, s])],
            params: vec![],
            axes: vec![
                ("x", vertex_coords(s)),
                ("y", vertex_coords(s)),
                (
                    "t",
                    (1..=frames)
                        .map(|j| (j * p.every()) as f64 * p.dt)
                        .collect(),
                ),
            ],
            linear_solves: true,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let p = &self.params;
        let s = p.resolution;
        let mut rng = sample_rng(seed, index);
        let c = vertex_coords(s);
        let mut u0 = self.initial.sample(&mut rng);
        for ((i, j), v) in u0.indexed_iter_mut() {
            *v *= (PI * c[i]).sin() * (PI * c[j]).sin();
        }
        let a = match (&self.coefficient, p.coefficient) {
            (Some(sampler), Some(c)) => {
                let mut a = sampler.sample(&mut rng);
                c.transform.apply(&mut a);
                a
            }
            _ => Array2::ones((s, s)),
        };
        let stepper = HeatStepper::new(self.grid, &a, p.scheme, p.dt, p.kappa, p.source)?;
        let mut u: Vec<f64> = u0
            .slice(ndarray::s![1..s - 1, 1..s - 1])
            .iter()
            .copied()
            .collect();
        let solver_err = |source| ProblemError::Solver {
            family: "heat",
            index,
            source: Box::new(source),
        };
        let mut solver = SequenceSolver::new(p.solver).map_err(solver_err)?;
        let mut trajectory = Vec::with_capacity(p.steps / p.every() * s * s);
        let mut report = stepper
            .run(&mut u, p.steps, p.every(), &mut solver, |_, u| {
                trajectory.extend(scatter(&self.grid, u).iter().copied())
            })
            .map_err(solver_err)?;
        report.seconds = start.elapsed().as_secs_f64();
        let mut inputs = vec![u0.iter().copied().collect()];
        if p.coefficient.is_some() {
            inputs.push(a.iter().copied().collect());
        }
        Ok(Sample {
            index,
            inputs,
            outputs: vec![trajectory],
            params: vec![],
            report,
        })
    }
}

/// The default solver of a heat step: the systems are SPD and well conditioned for small Δt.
pub fn default_solver() -> SolverSpec {
    SolverSpec::new(
        crate::sequence::Method::Cg,
        PrecondKind::Jacobi,
        crate::krylov::SolveParams::new(1e-10, 10_000),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::SolveParams;
    use crate::sequence::Method;

    /// Runs u₀ = sin(πx) sin(πy) with κ = 1 to time `t` and returns the interior values and the
    /// discrete Laplacian's eigenvalue for that mode.
    fn run(s: usize, scheme: TimeScheme, dt: f64, t: f64) -> (Vec<f64>, Vec<f64>, f64) {
        let grid = Grid2d::new(s, Centring::Vertex);
        let c = vertex_coords(s);
        let h = grid.h();
        let stepper = HeatStepper::new(
            grid,
            &Array2::ones((s, s)),
            scheme,
            dt,
            Diffusivity::Constant(1.0),
            0.0,
        )
        .unwrap();
        let mode: Vec<f64> = (1..s - 1)
            .flat_map(|i| (1..s - 1).map(move |j| (i, j)))
            .map(|(i, j)| (PI * c[i]).sin() * (PI * c[j]).sin())
            .collect();
        let mut u = mode.clone();
        let spec = SolverSpec::new(
            Method::Cg,
            PrecondKind::Jacobi,
            SolveParams::new(1e-13, 10_000),
        );
        let mut solver = SequenceSolver::new(spec).unwrap();
        let steps = (t / dt).round() as usize;
        let report = stepper
            .run(&mut u, steps, steps, &mut solver, |_, _| {})
            .unwrap();
        assert!(report.converged && report.steps == steps);
        let lambda = 2.0 * 4.0 / (h * h) * (PI * h / 2.0).sin().powi(2);
        (u, mode, lambda)
    }

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        let e: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let n: f64 = b.iter().map(|y| y * y).sum();
        (e / n).sqrt()
    }

    #[test]
    fn separable_mode_decays_at_the_continuous_rate() {
        let t = 0.05;
        let (u, mode, _) = run(65, TimeScheme::CrankNicolson, 1e-4, t);
        let decay = (-2.0 * PI * PI * t).exp();
        let exact: Vec<f64> = mode.iter().map(|m| m * decay).collect();
        // O(h²) in space: 2π²h²/12·t·(2π²) relative ≈ 1e-3 at h = 1/64.
        assert!(rel(&u, &exact) < 2e-3, "{}", rel(&u, &exact));
    }

    #[test]
    fn crank_nicolson_is_second_order_and_implicit_euler_first() {
        let t = 0.05;
        for (scheme, expect) in [
            (TimeScheme::CrankNicolson, 2.0),
            (TimeScheme::ImplicitEuler, 1.0),
        ] {
            let err = |dt: f64| {
                let (u, mode, lambda) = run(17, scheme, dt, t);
                // Against the semi-discrete solution, so only the time error remains.
                let exact: Vec<f64> = mode.iter().map(|m| m * (-lambda * t).exp()).collect();
                rel(&u, &exact)
            };
            let (e1, e2) = (err(5e-3), err(2.5e-3));
            let order = (e1 / e2).log2();
            assert!(
                (order - expect).abs() < 0.15,
                "{scheme:?}: order {order} ({e1}, {e2})"
            );
        }
    }

    #[test]
    fn switching_diffusivity_is_nonnegative_and_recycling_solves_the_trajectory() {
        for k in 0..100 {
            assert!(Diffusivity::Switching.at(k as f64 * 0.013) >= 0.0);
        }
        let params = HeatParams {
            resolution: 17,
            scheme: TimeScheme::CrankNicolson,
            dt: 0.01,
            steps: 20,
            every: Some(5),
            kappa: Diffusivity::Switching,
            coefficient: Some(Coefficient {
                transform: crate::field::CoefficientTransform::LogNormal,
                field: GrfParams::default(),
            }),
            initial: GrfParams::default(),
            source: 1.0,
            solver: SolverSpec::new(
                Method::RecycledCg { recycle: 4 },
                PrecondKind::Jacobi,
                SolveParams::new(1e-10, 1000),
            ),
        };
        let g = HeatGenerator::new(params).unwrap();
        let s = g.generate(1, 2).unwrap();
        assert!(s.report.converged && s.report.rel_residual <= 1e-10);
        assert_eq!(s.outputs[0].len(), 4 * 17 * 17);
        assert_eq!(s.inputs.len(), 2);
    }
}
