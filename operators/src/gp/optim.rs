//! What the 1-D and 2-D solvers share: the optimisation settings, Adam, the errors and the
//! report of a run.

use super::kernel::{Envelope, SpectralMixture};
use crate::param::{require, InvalidParam};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpError {
    #[error("GP-HM: {0}")]
    Invalid(#[from] InvalidParam),
    #[error("GP-HM: the kernel matrix is not positive definite to working precision at step {step}; raise the jitter")]
    NotPositiveDefinite { step: usize },
    #[error("GP-HM: the loss became non-finite at step {step}")]
    NonFinite { step: usize },
}

/// Settings of the optimisation (the optimisation keys of a `[gp]` section).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct GpParams {
    /// Mixture components Q.
    pub components: usize,
    pub envelope: Envelope,
    /// Initial frequencies spread over `[0, max_freq]` (cycles per unit length).
    pub max_freq: f64,
    /// Initial length-scale ℓ of every component.
    pub length_scale: f64,
    pub jitter: f64,
    /// β, the weight of the boundary likelihood (the paper's 200).
    pub boundary_weight: f64,
    pub learning_rate: f64,
    /// Over the last `decay_fraction` of the steps the learning rate decays geometrically from
    /// `learning_rate` to this (a constant rate leaves Adam hovering around the minimum).
    pub final_learning_rate: f64,
    pub decay_fraction: f64,
    pub steps: usize,
    /// After the last Adam step, replace the grid values by their exact minimiser for the learned
    /// kernel and precisions (`solve_values` of each solver). Off, the result is pure Adam, as in
    /// the paper.
    pub polish: bool,
    /// Also polish every this many steps (0: never), so the kernel is learned against exact
    /// values (variable projection); in 2-D, Adam alone does not converge without it.
    pub polish_every: usize,
    /// 2-D polish: relative residual and iteration cap of its conjugate gradients.
    pub polish_tolerance: f64,
    pub polish_max_iterations: usize,
    /// Allen–Cahn polish: Gauss–Newton stops when the values change by less than this
    /// (relatively); in 2-D it is also each step's CG tolerance, as a step is only a correction.
    pub newton_tolerance: f64,
}

impl Default for GpParams {
    fn default() -> Self {
        Self {
            components: 30,
            envelope: Envelope::Gaussian,
            max_freq: 20.0,
            length_scale: 1.0,
            jitter: 1e-6,
            boundary_weight: 200.0,
            learning_rate: 1e-2,
            final_learning_rate: 1e-4,
            decay_fraction: 0.3,
            steps: 20_000,
            polish: true,
            polish_every: 1000,
            polish_tolerance: 1e-8,
            polish_max_iterations: 5000,
            newton_tolerance: 1e-6,
        }
    }
}

impl GpParams {
    /// The learning rate of `step`: constant, then a geometric decay to `final_learning_rate` over
    /// the last `decay_fraction` of the steps.
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let decay_steps = ((self.steps as f64 * self.decay_fraction) as usize).max(1);
        let decay_start = self.steps.saturating_sub(decay_steps);
        let rate = (self.final_learning_rate / self.learning_rate).ln() / decay_steps as f64;
        self.learning_rate * (rate * step.saturating_sub(decay_start) as f64).exp()
    }

    /// Whether the grid values are polished after `step`.
    pub fn polishes_after(&self, step: usize) -> bool {
        let last = step + 1 == self.steps;
        let periodic = self.polish_every > 0 && (step + 1).is_multiple_of(self.polish_every);
        (last && self.polish) || periodic
    }

    /// The paper's initial kernel: `components` equal weights, frequencies spread over
    /// `[0, max_freq]`, one length-scale.
    pub fn initial_kernel(&self) -> SpectralMixture {
        SpectralMixture::spread(
            self.components,
            self.max_freq,
            self.length_scale,
            self.envelope,
        )
    }

    /// Gauss–Newton steps per polish (only the nonlinear problems use more than one).
    pub fn newton_iterations(&self) -> usize {
        20
    }

    /// Every setting in range; `field` is its key in a `[gp]` section.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        let c = self.components;
        require(
            (1..=200).contains(&c),
            "components",
            "an integer from 1 to 200",
            c,
        )?;
        let f = self.max_freq;
        require(
            f >= 0.0 && f.is_finite(),
            "max_freq",
            "a number ≥ 0 (cycles per unit length)",
            f,
        )?;
        for (field, v) in [
            ("length_scale", self.length_scale),
            ("boundary_weight", self.boundary_weight),
            ("learning_rate", self.learning_rate),
        ] {
            require(v > 0.0 && v.is_finite(), field, "a positive number", v)?;
        }
        let j = self.jitter;
        require(j > 0.0 && j < 1.0, "jitter", "a number in (0, 1)", j)?;
        let (lr, last) = (self.learning_rate, self.final_learning_rate);
        require(
            last > 0.0 && last <= lr,
            "final_learning_rate",
            &format!("a positive number ≤ learning_rate = {lr}"),
            last,
        )?;
        let d = self.decay_fraction;
        require(
            (0.0..=1.0).contains(&d),
            "decay_fraction",
            "a number in [0, 1]",
            d,
        )?;
        for (field, v) in [
            ("polish_tolerance", self.polish_tolerance),
            ("newton_tolerance", self.newton_tolerance),
        ] {
            require(v > 0.0 && v < 1.0, field, "a number in (0, 1)", v)?;
        }
        let cap = self.polish_max_iterations;
        require(cap >= 1, "polish_max_iterations", "an integer ≥ 1", cap)?;
        require(self.steps >= 1, "steps", "an integer ≥ 1", self.steps)
    }
}

/// What a run did besides its state: the exact value steps ("polish") and, in 2-D, the
/// conjugate-gradient figures of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpInfo {
    pub steps: usize,
    pub polishes: usize,
    /// CG iterations of the last polish (2-D; 0 in 1-D, where it is a direct QR solve).
    pub last_polish_iterations: usize,
    /// Relative residual of the last polish's normal equations (2-D; 0 in 1-D).
    pub last_polish_residual: f64,
    /// False if any 2-D polish stopped at its iteration cap.
    pub polish_converged: bool,
}

/// Adam (Kingma & Ba) with the usual β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    /// Steps per unknown, for the bias corrections (unknowns can be [`Adam::reset`]).
    t: Vec<i32>,
}

impl Adam {
    pub fn new(len: usize, lr: f64) -> Self {
        Self {
            lr,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: vec![0; len],
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Forgets the moments of the unknowns in `range`, as if they had just been created.
    pub fn reset(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            self.m[i] = 0.0;
            self.v[i] = 0.0;
            self.t[i] = 0;
        }
    }

    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        for i in 0..x.len() {
            self.t[i] += 1;
            let (c1, c2) = (1.0 - b1.powi(self.t[i]), 1.0 - b2.powi(self.t[i]));
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g[i] * g[i];
            x[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps);
        }
    }
}

/// The unknowns of a solver's state, flattened for Adam.
pub(crate) trait Unknowns {
    fn values_mut(&mut self) -> &mut [f64];
}

/// What the shared loop needs of an evaluation.
pub(crate) trait Scored {
    fn loss(&self) -> f64;
    fn gradient(&self) -> &[f64];
}

/// The loop both solvers run: the learning-rate schedule, a check for non-finite losses and
/// gradients, the Adam step, and `polish(state, adam, info)` when [`GpParams::polishes_after`]
/// says so; `observe` sees every step after its polish.
pub(crate) fn optimise<S: Unknowns, E: Scored>(
    params: &GpParams,
    mut state: S,
    mut evaluate: impl FnMut(&S) -> Option<E>,
    mut polish: impl FnMut(&mut S, &mut Adam, &mut GpInfo) -> Option<()>,
    mut observe: impl FnMut(usize, &S, &E),
) -> Result<(S, GpInfo), GpError> {
    let mut adam = Adam::new(state.values_mut().len(), params.learning_rate);
    let mut info = GpInfo {
        polish_converged: true,
        ..GpInfo::default()
    };
    for step in 0..params.steps {
        adam.set_learning_rate(params.learning_rate_at(step));
        let ev = evaluate(&state).ok_or(GpError::NotPositiveDefinite { step })?;
        if !ev.loss().is_finite() || ev.gradient().iter().any(|g| !g.is_finite()) {
            return Err(GpError::NonFinite { step });
        }
        adam.step(state.values_mut(), ev.gradient());
        info.steps += 1;
        if params.polishes_after(step) {
            polish(&mut state, &mut adam, &mut info)
                .ok_or(GpError::NotPositiveDefinite { step })?;
            info.polishes += 1;
        }
        observe(step, &state, &ev);
    }
    Ok((state, info))
}
