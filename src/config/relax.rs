//! `[relax]`: a learned-relaxation experiment, policies choosing the SOR/SSOR ω over a sequence of
//! systems ("Learning to Relax").

use super::source::Source;
use super::{ConfigError, ImageFormat};
use pdekit_solvers::relax::policy::TSALLIS_RATE;
use pdekit_solvers::relax::sequence::ShiftVariance;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The test sequence of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelaxSequenceKind {
    /// `A_t = L + c_t·I` with SOR.
    ShiftedLaplacian,
    /// A Crank–Nicolson heat equation with switching κ(t), SSOR-preconditioned CG.
    Heat,
}

/// A learner to run beside the baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Learner {
    /// Tsallis-INF over the arms.
    Tsallis,
    /// One Tsallis-INF per bin of the context (`bins`).
    Binned,
    /// Chebyshev regression of the cost on the context (`degree`), inverse-gap weighting.
    Chebyshev,
}

/// The ω grid every policy chooses from: `count` values from `min` to `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmsPlan {
    pub min: f64,
    pub max: f64,
    pub count: usize,
}

impl Default for ArmsPlan {
    /// The paper's 20 arms from 1 to 1.95.
    fn default() -> Self {
        Self {
            min: 1.0,
            max: 1.95,
            count: 20,
        }
    }
}

/// `[relax.shifted_laplacian]`: the `grid²`-point Laplacian plus random shifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShiftedLaplacianPlan {
    pub grid: usize,
    pub instances: usize,
    pub variance: ShiftVariance,
}

impl Default for ShiftedLaplacianPlan {
    fn default() -> Self {
        Self {
            grid: 10,
            instances: 5000,
            variance: ShiftVariance::High,
        }
    }
}

/// `[relax.heat]`: the heat equation on a `grid²` interior grid over `steps` time steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeatPlan {
    pub grid: usize,
    pub steps: usize,
}

impl Default for HeatPlan {
    fn default() -> Self {
        Self {
            grid: 32,
            steps: 1000,
        }
    }
}

/// A validated `[relax]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelaxPlan {
    pub sequence: RelaxSequenceKind,
    /// The table of the chosen sequence (the other is left out of the plan).
    pub shifted_laplacian: Option<ShiftedLaplacianPlan>,
    pub heat: Option<HeatPlan>,
    pub output_dir: PathBuf,
    #[serde(default)]
    pub seed: u64,
    /// Independent runs with seeds `seed, seed + 1, …`; the summary averages over them.
    #[serde(default = "one")]
    pub repeats: u64,
    #[serde(default = "tolerance")]
    pub tolerance: f64,
    #[serde(default = "max_iterations")]
    pub max_iterations: usize,
    #[serde(default = "learners")]
    pub learners: Vec<Learner>,
    /// Learners see the loss `min(iterations, loss_scale)/loss_scale`.
    #[serde(default = "loss_scale")]
    pub loss_scale: f64,
    /// c in the Tsallis-INF learning rate η_t = c/√t.
    #[serde(default = "learning_rate")]
    pub learning_rate: f64,
    /// γ₀ in the Chebyshev learner's inverse-gap weight γ = γ₀√t.
    #[serde(default = "gamma0")]
    pub gamma0: f64,
    #[serde(default = "bins")]
    pub bins: usize,
    #[serde(default = "degree")]
    pub degree: usize,
    #[serde(default)]
    pub format: ImageFormat,
    #[serde(default)]
    pub arms: ArmsPlan,
}

fn one() -> u64 {
    1
}

fn tolerance() -> f64 {
    1e-8
}

fn max_iterations() -> usize {
    5000
}

fn learners() -> Vec<Learner> {
    vec![Learner::Tsallis, Learner::Binned, Learner::Chebyshev]
}

/// The learners' iteration cap for normalising costs; also the cap of the generate stage's
/// learned ω.
pub const LOSS_SCALE: f64 = 1000.0;

fn loss_scale() -> f64 {
    LOSS_SCALE
}

fn learning_rate() -> f64 {
    TSALLIS_RATE
}

fn gamma0() -> f64 {
    10.0
}

fn bins() -> usize {
    5
}

fn degree() -> usize {
    3
}

pub(super) fn check(src: &Source) -> Result<Option<RelaxPlan>, ConfigError> {
    if src.get("relax").is_none() {
        return Ok(None);
    }
    let r: RelaxPlan = src.section("relax", &[])?;
    let a = &r.arms;
    for (key, v) in [("min", a.min), ("max", a.max)] {
        let key = format!("relax.arms.{key}");
        src.ensure(v > 0.0 && v < 2.0, &key, "a number in (0, 2)", v)?;
    }
    let at_least_min = format!("a value ≥ relax.arms.min = {}", a.min);
    src.ensure(a.max >= a.min, "relax.arms.max", &at_least_min, a.max)?;
    let count_ok = (1..=200).contains(&a.count);
    src.ensure(
        count_ok,
        "relax.arms.count",
        "an integer from 1 to 200",
        a.count,
    )?;
    let repeats_ok = (1..=1000).contains(&r.repeats);
    src.ensure(
        repeats_ok,
        "relax.repeats",
        "an integer from 1 to 1000",
        r.repeats,
    )?;
    let tol_ok = r.tolerance > 0.0 && r.tolerance < 1.0;
    src.ensure(tol_ok, "relax.tolerance", "a number in (0, 1)", r.tolerance)?;
    let cap = r.max_iterations;
    src.ensure(cap >= 1, "relax.max_iterations", "an integer ≥ 1", cap)?;
    let scale_ok = r.loss_scale >= 1.0 && r.loss_scale.is_finite();
    src.ensure(scale_ok, "relax.loss_scale", "a number ≥ 1", r.loss_scale)?;
    for (key, v) in [("learning_rate", r.learning_rate), ("gamma0", r.gamma0)] {
        let ok = v > 0.0 && v.is_finite();
        src.ensure(ok, &format!("relax.{key}"), "a positive number", v)?;
    }
    let bins_ok = (1..=100).contains(&r.bins);
    src.ensure(bins_ok, "relax.bins", "an integer from 1 to 100", r.bins)?;
    src.ensure(
        r.degree <= 7,
        "relax.degree",
        "an integer from 0 to 7",
        r.degree,
    )?;
    let (shifted_laplacian, heat) = match r.sequence {
        RelaxSequenceKind::ShiftedLaplacian => {
            let s = r.shifted_laplacian.clone().unwrap_or_default();
            let key = "relax.shifted_laplacian";
            let grid_ok = (2..=1000).contains(&s.grid);
            src.ensure(
                grid_ok,
                &format!("{key}.grid"),
                "an integer from 2 to 1000",
                s.grid,
            )?;
            let n = s.instances;
            src.ensure(n >= 4, &format!("{key}.instances"), "an integer ≥ 4", n)?;
            (Some(s), None)
        }
        RelaxSequenceKind::Heat => {
            let h = r.heat.clone().unwrap_or_default();
            let grid_ok = (2..=1000).contains(&h.grid);
            src.ensure(
                grid_ok,
                "relax.heat.grid",
                "an integer from 2 to 1000",
                h.grid,
            )?;
            src.ensure(h.steps >= 4, "relax.heat.steps", "an integer ≥ 4", h.steps)?;
            (None, Some(h))
        }
    };
    Ok(Some(RelaxPlan {
        output_dir: src.path(&r.output_dir.to_string_lossy()),
        shifted_laplacian,
        heat,
        ..r
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};

    const RELAX: &str = "[relax]\noutput_dir = \"out\"\n";

    fn relax(extra: &str) -> super::RelaxPlan {
        read(&format!("{RELAX}{extra}\n")).relax.unwrap()
    }

    #[test]
    fn the_chosen_sequence_gets_its_table_with_defaults() {
        let r = relax("sequence = \"shifted_laplacian\"");
        let s = r.shifted_laplacian.unwrap();
        assert_eq!((s.grid, s.instances), (10, 5000));
        assert!(r.heat.is_none());
        assert_eq!(r.arms.count, 20);
        let h = relax("sequence = \"heat\"\n[relax.heat]\nsteps = 40");
        assert_eq!(h.heat.unwrap().steps, 40);
    }

    #[test]
    fn relax_errors_name_their_key() {
        let cases = [
            (
                "sequence = \"heat\"\n[relax.shifted_laplacian]\ngrid = 4",
                "key `relax.shifted_laplacian`: unknown field",
            ),
            (
                "sequence = \"heat\"\n[relax.arms]\nmin = 1.5\nmax = 1.2",
                "key `relax.arms.max`: expected a value ≥ relax.arms.min = 1.5, got 1.2",
            ),
            (
                "sequence = \"heat\"\nbins = 0",
                "key `relax.bins`: expected an integer from 1 to 100, got 0",
            ),
            (
                "sequence = \"heat\"\nlearners = [\"greedy\"]",
                "key `relax.learners`: unknown variant `greedy`",
            ),
            (
                "sequence = \"laplace\"",
                "key `relax.sequence`: unknown variant `laplace`",
            ),
        ];
        assert_errors(cases.map(|(extra, want)| (format!("{RELAX}{extra}"), want)));
    }
}
