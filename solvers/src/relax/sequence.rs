//! Sequences of related linear systems for learning ω.

use crate::krylov::{cg, SolveError, SolveParams};
use crate::linalg::CsrOperator;
use crate::precond::sor::{optimal_omega, sor, SorError, SorInfo, SorParams, SsorPreconditioner};
use crate::rng::sample_rng;
use rand::Rng;
use rand_distr::{Beta, Distribution, StandardNormal};
use sprs::CsMat;

pub use crate::problem::laplacian_2d;

/// Outcome of solving one instance of a sequence with a given ω.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The cost a learner sees: iterations (SOR sweeps, or CG iterations).
    pub iterations: usize,
    pub converged: bool,
}

/// Errors of a sequence step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Sor(#[from] SorError),
    #[error(transparent)]
    Cg(#[from] SolveError),
}

/// A sequence of systems solved one after another with an ω chosen per instance.
///
/// `State` carries what one instance hands to the next (a warm start); stateless sequences use `()`.
pub trait RelaxSequence: Sync {
    type State: Clone + Send + Sync;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The scalar context a contextual learner sees before choosing ω for instance `t`.
    fn context(&self, t: usize) -> f64;
    /// The range contexts fall in, for binning and for mapping to Chebyshev's [−1, 1].
    fn context_range(&self) -> (f64, f64);
    fn initial_state(&self) -> Self::State;
    /// True when instances do not depend on each other (`State = ()`): costs can then be tabulated.
    fn stateless(&self) -> bool;
    fn solve(
        &self,
        t: usize,
        state: &Self::State,
        omega: f64,
    ) -> Result<(StepOutcome, Self::State), StepError>;
    /// The theoretically optimal ω for instance `t`, where theory gives one.
    fn model_optimal_omega(&self, _t: usize) -> Option<f64> {
        None
    }
}

/// How much the shift of the shifted-Laplacian sequence varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ShiftVariance {
    /// c = −0.15 + 0.6·Beta(0.5, 1.5)
    #[default]
    High,
    /// c = −0.15 + 0.6·Beta(2, 6)
    Low,
}

/// `A_t = L + c_t I` with `L` the `m × m` Laplacian stencil, Gaussian `b_t`, `x0 = 0`, solved by SOR;
/// the context is `c_t`. Instance `t` depends only on `(seed, t)`.
#[derive(Debug, Clone)]
pub struct ShiftedLaplacianSequence {
    pub m: usize,
    pub instances: usize,
    pub seed: u64,
    pub variance: ShiftVariance,
    pub rtol: f64,
    pub max_iter: usize,
    shifts: Vec<f64>,
}

impl ShiftedLaplacianSequence {
    pub fn new(
        m: usize,
        instances: usize,
        seed: u64,
        variance: ShiftVariance,
        rtol: f64,
        max_iter: usize,
    ) -> Self {
        let (a, b) = match variance {
            ShiftVariance::High => (0.5, 1.5),
            ShiftVariance::Low => (2.0, 6.0),
        };
        let beta = Beta::new(a, b).expect("fixed, valid Beta parameters");
        let shifts = (0..instances)
            .map(|t| -0.15 + 0.6 * beta.sample(&mut sample_rng(seed, t as u64)))
            .collect();
        Self {
            m,
            instances,
            seed,
            variance,
            rtol,
            max_iter,
            shifts,
        }
    }

    fn rhs(&self, t: usize) -> Vec<f64> {
        // Stream t of seed + 1: independent of the shift's stream.
        let mut rng = sample_rng(self.seed.wrapping_add(1), t as u64);
        (0..self.m * self.m)
            .map(|_| rng.sample(StandardNormal))
            .collect()
    }
}

impl RelaxSequence for ShiftedLaplacianSequence {
    type State = ();

    fn len(&self) -> usize {
        self.instances
    }

    fn context(&self, t: usize) -> f64 {
        self.shifts[t]
    }

    fn context_range(&self) -> (f64, f64) {
        (-0.15, 0.45)
    }

    fn initial_state(&self) {}

    fn stateless(&self) -> bool {
        true
    }

    /// Young's ω* = 2/(1 + √(1 − ρ²)) with the Jacobi spectral radius ρ = 4 cos(π/(m+1)) / (4 + c_t)
    /// of the consistently ordered matrix `L + c_t I`.
    fn model_optimal_omega(&self, t: usize) -> Option<f64> {
        let rho = 4.0 * (std::f64::consts::PI / (self.m + 1) as f64).cos() / (4.0 + self.shifts[t]);
        Some(optimal_omega(rho))
    }

    fn solve(&self, t: usize, _: &(), omega: f64) -> Result<(StepOutcome, ()), StepError> {
        let a = laplacian_2d(self.m, self.shifts[t]);
        let b = self.rhs(t);
        let mut x = vec![0.0; b.len()];
        let SorInfo {
            iterations,
            converged,
            ..
        } = sor(
            &a,
            &b,
            &mut x,
            &SorParams::new(omega, self.rtol, self.max_iter),
        )?;
        Ok((
            StepOutcome {
                iterations,
                converged,
            },
            (),
        ))
    }
}

/// The 2-D heat equation `u_t = κ(t) Δu + f` on the unit square, zero boundary, Crank–Nicolson in
/// time: each step solves `(I + ½Δt κ A) u⁺ = (I − ½Δt κ A) u + Δt f` by SSOR-preconditioned CG,
/// warm-started from `u`. `κ(t) = max(0.1 sin 2πt, −10 sin 2πt)`; the context is κ at the midpoint.
#[derive(Debug, Clone)]
pub struct HeatSequence {
    /// Interior points per side.
    pub m: usize,
    pub steps: usize,
    pub dt: f64,
    pub rtol: f64,
    pub max_iter: usize,
    /// The 5-point Laplacian scaled by 1/h² (positive definite).
    laplacian: CsMat<f64>,
}

impl HeatSequence {
    /// `steps` Crank–Nicolson steps over `t ∈ [0, 1]`.
    pub fn new(m: usize, steps: usize, rtol: f64, max_iter: usize) -> Self {
        let h = 1.0 / (m + 1) as f64;
        let laplacian = laplacian_2d(m, 0.0).map(|v| v / (h * h));
        Self {
            m,
            steps,
            dt: 1.0 / steps as f64,
            rtol,
            max_iter,
            laplacian,
        }
    }

    pub fn kappa(t: f64) -> f64 {
        crate::problem::heat::Diffusivity::Switching.at(t)
    }

    fn step_matrix(&self, sign: f64, kappa: f64) -> CsMat<f64> {
        let c = sign * 0.5 * self.dt * kappa;
        let scaled = self.laplacian.map(|v| c * v);
        let eye = CsMat::<f64>::eye(self.m * self.m);
        &eye + &scaled
    }
}

impl RelaxSequence for HeatSequence {
    type State = Vec<f64>;

    fn len(&self) -> usize {
        self.steps
    }

    fn context(&self, t: usize) -> f64 {
        Self::kappa((t as f64 + 0.5) * self.dt)
    }

    fn context_range(&self) -> (f64, f64) {
        (0.0, 10.0)
    }

    /// `u0 = sin(πx) sin(πy)`.
    fn initial_state(&self) -> Vec<f64> {
        let h = 1.0 / (self.m + 1) as f64;
        let pi = std::f64::consts::PI;
        (0..self.m * self.m)
            .map(|k| {
                let (p, q) = (k / self.m + 1, k % self.m + 1);
                (pi * p as f64 * h).sin() * (pi * q as f64 * h).sin()
            })
            .collect()
    }

    fn stateless(&self) -> bool {
        false
    }

    fn solve(
        &self,
        t: usize,
        u: &Vec<f64>,
        omega: f64,
    ) -> Result<(StepOutcome, Vec<f64>), StepError> {
        let kappa = self.context(t);
        let lhs = self.step_matrix(1.0, kappa);
        let rhs_m = self.step_matrix(-1.0, kappa);
        let mut b = vec![0.0; u.len()];
        crate::linalg::csr_matvec_serial(&rhs_m, u, &mut b);
        for bi in b.iter_mut() {
            *bi += self.dt; // f = 1
        }
        let mut x = u.clone();
        let pre = SsorPreconditioner::new(&lhs, omega)?;
        let info = match cg(
            &CsrOperator::serial(&lhs),
            &pre,
            &b,
            &mut x,
            &SolveParams::new(self.rtol, self.max_iter),
        ) {
            Ok(info) => info,
            Err(SolveError::NoConvergence { info, .. }) => *info,
            Err(e) => return Err(e.into()),
        };
        Ok((
            StepOutcome {
                iterations: info.iterations,
                converged: info.converged,
            },
            x,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_laplacian_shifts_follow_their_beta_law() {
        let high = ShiftedLaplacianSequence::new(10, 4000, 1, ShiftVariance::High, 1e-8, 100);
        let low = ShiftedLaplacianSequence::new(10, 4000, 1, ShiftVariance::Low, 1e-8, 100);
        let mean = |s: &ShiftedLaplacianSequence| {
            (0..s.len()).map(|t| s.context(t)).sum::<f64>() / s.len() as f64
        };
        // E[c] = −0.15 + 0.6·a/(a+b): 0 for both laws; the high-variance one spreads wider.
        assert!(
            mean(&high).abs() < 0.01 && mean(&low).abs() < 0.01,
            "{} {}",
            mean(&high),
            mean(&low)
        );
        let var = |s: &ShiftedLaplacianSequence| {
            (0..s.len()).map(|t| s.context(t).powi(2)).sum::<f64>() / s.len() as f64
        };
        // Var = 0.36·ab/((a+b)²(a+b+1)): 0.0225 (high) and 0.0075 (low).
        assert!(
            (var(&high) - 0.0225).abs() < 0.002 && (var(&low) - 0.0075).abs() < 0.001,
            "{} {}",
            var(&high),
            var(&low)
        );
        assert!((0..high.len()).all(|t| (-0.15..=0.45).contains(&high.context(t))));
    }

    #[test]
    fn heat_kappa_switches_between_slow_and_fast_phases() {
        assert!((HeatSequence::kappa(0.25) - 0.1).abs() < 1e-12);
        assert!((HeatSequence::kappa(0.75) - 10.0).abs() < 1e-12);
        assert!(HeatSequence::kappa(0.0).abs() < 1e-12);
    }

    /// With κ fixed the heat step is exact CN: the sin·sin mode decays by (1 − ½Δtκλ)/(1 + ½Δtκλ),
    /// λ the discrete eigenvalue; here checked through one step at the first phase's κ.
    #[test]
    fn heat_step_damps_the_lowest_mode_at_the_crank_nicolson_rate() {
        let seq = HeatSequence::new(15, 50, 1e-12, 500);
        let u0 = seq.initial_state();
        let kappa = seq.context(0);
        let h = 1.0 / 16.0;
        let lambda = 2.0 * (4.0 / (h * h)) * (std::f64::consts::PI * h / 2.0).sin().powi(2);
        let g = (1.0 - 0.5 * seq.dt * kappa * lambda) / (1.0 + 0.5 * seq.dt * kappa * lambda);
        // u1 = g u0 + Δt (I + ½Δtκ A)⁻¹ 1: remove the source part by solving the same step from 0.
        let (_, u1) = seq.solve(0, &u0, 1.2).unwrap();
        let (_, s1) = seq.solve(0, &vec![0.0; u0.len()], 1.2).unwrap();
        for k in 0..u0.len() {
            assert!((u1[k] - s1[k] - g * u0[k]).abs() < 1e-9, "point {k}");
        }
    }
}
