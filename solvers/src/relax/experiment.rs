//! Runs ω policies and baselines over a sequence and collects what each paid.

use super::policy::{BinnedTsallisInf, ChebyshevRegression, OmegaPolicy, TsallisInf};
use super::sequence::{RelaxSequence, StepError, StepOutcome};
use rayon::prelude::*;

/// A learner to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LearnerKind {
    Tsallis,
    Binned { bins: usize },
    Chebyshev { degree: usize },
}

/// Parameters of [`run_experiment`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExperimentParams {
    /// The ω grid every policy chooses from.
    pub arms: Vec<f64>,
    /// Learners see the loss `min(cost, loss_scale)/loss_scale` in [0, 1].
    pub loss_scale: f64,
    /// c in the Tsallis-INF learning rate η_t = c/√t.
    pub tsallis_rate: f64,
    /// γ₀ in the Chebyshev learner's inverse-gap weight γ = γ₀√t.
    pub gamma0: f64,
    pub learners: Vec<LearnerKind>,
    /// Seed of the learners' own randomness.
    pub seed: u64,
}

impl ExperimentParams {
    /// Paper defaults for the learners (η_t = 2/√t, γ₀ = 10); costs normalised by `loss_scale`.
    pub fn new(arms: Vec<f64>, loss_scale: f64, learners: Vec<LearnerKind>, seed: u64) -> Self {
        Self {
            arms,
            loss_scale,
            tsallis_rate: super::policy::TSALLIS_RATE,
            gamma0: 10.0,
            learners,
            seed,
        }
    }
}

/// What one policy chose and paid over the sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub name: String,
    pub omegas: Vec<f64>,
    pub costs: Vec<usize>,
    /// Instances where the solver hit its cap.
    pub unconverged: usize,
    /// The policy's final distribution over the arms, if it has one.
    pub final_probabilities: Option<Vec<f64>>,
}

impl Trace {
    pub fn total(&self) -> usize {
        self.costs.iter().sum()
    }

    pub fn mean(&self) -> f64 {
        self.total() as f64 / self.costs.len().max(1) as f64
    }

    /// Mean cost over the last quarter of the sequence.
    pub fn last_quarter_mean(&self) -> f64 {
        let n = self.costs.len();
        let tail = &self.costs[n - n / 4..];
        tail.iter().sum::<usize>() as f64 / tail.len().max(1) as f64
    }
}

/// Every policy's trace on one sequence.
#[derive(Debug, Clone)]
pub struct ExperimentReport {
    pub arms: Vec<f64>,
    pub contexts: Vec<f64>,
    /// One trace per arm, in arm order.
    pub fixed: Vec<Trace>,
    /// Index of the fixed arm with the least total cost (the best fixed ω in hindsight).
    pub best_fixed: usize,
    /// The oracle that takes the cheapest arm on every instance.
    pub instance_optimal: Trace,
    /// The theoretically optimal ω of each instance (off the arm grid), where the sequence has one.
    pub model_optimal: Option<Trace>,
    pub learners: Vec<Trace>,
}

fn learner(
    kind: LearnerKind,
    p: &ExperimentParams,
    range: (f64, f64),
    seed: u64,
) -> Box<dyn OmegaPolicy> {
    let arms = p.arms.clone();
    match kind {
        LearnerKind::Tsallis => Box::new(TsallisInf::new(arms, p.loss_scale, p.tsallis_rate, seed)),
        LearnerKind::Binned { bins } => Box::new(BinnedTsallisInf::new(
            arms,
            p.loss_scale,
            p.tsallis_rate,
            range,
            bins,
            seed,
        )),
        LearnerKind::Chebyshev { degree } => Box::new(ChebyshevRegression::new(
            arms,
            p.loss_scale,
            range,
            degree,
            p.gamma0,
            seed,
        )),
    }
}

fn trace(
    name: String,
    omegas: Vec<f64>,
    outcomes: &[&StepOutcome],
    probs: Option<Vec<f64>>,
) -> Trace {
    Trace {
        name,
        omegas,
        costs: outcomes.iter().map(|o| o.iterations).collect(),
        unconverged: outcomes.iter().filter(|o| !o.converged).count(),
        final_probabilities: probs,
    }
}

/// Runs the fixed arms, the instance-optimal oracle and the learners over `seq`. `progress` is
/// called with the number of solves finished since the last call.
///
/// Stateless sequences are solved once per (instance, arm) and every policy reads that table, which
/// is exact because an instance's cost does not depend on earlier choices. Stateful sequences (warm
/// starts) run each policy along its own trajectory.
pub fn run_experiment<S: RelaxSequence>(
    seq: &S,
    params: &ExperimentParams,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ExperimentReport, StepError> {
    let arms = &params.arms;
    let t_len = seq.len();
    let contexts: Vec<f64> = (0..t_len).map(|t| seq.context(t)).collect();
    let range = seq.context_range();
    let arm_index = |omega: f64| {
        arms.iter()
            .position(|&w| w == omega)
            .expect("policies choose from the arms")
    };
    let mut learners: Vec<Box<dyn OmegaPolicy>> = params
        .learners
        .iter()
        .enumerate()
        .map(|(i, &k)| learner(k, params, range, params.seed.wrapping_add(i as u64)))
        .collect();

    let (fixed, instance_optimal, learner_traces) = if seq.stateless() {
        let state = seq.initial_state();
        let table: Vec<Vec<StepOutcome>> = (0..t_len)
            .into_par_iter()
            .map(|t| {
                let row = arms
                    .iter()
                    .map(|&w| seq.solve(t, &state, w).map(|(o, _)| o))
                    .collect::<Result<Vec<_>, _>>();
                progress(arms.len());
                row
            })
            .collect::<Result<_, _>>()?;
        let fixed: Vec<Trace> = arms
            .iter()
            .enumerate()
            .map(|(a, &w)| {
                let col: Vec<&StepOutcome> = table.iter().map(|row| &row[a]).collect();
                trace(format!("ω = {w:.2}"), vec![w; t_len], &col, None)
            })
            .collect();
        let best: Vec<usize> = table
            .iter()
            .map(|row| {
                (0..arms.len())
                    .min_by_key(|&a| row[a].iterations)
                    .unwrap_or(0)
            })
            .collect();
        let oracle = trace(
            "instance-optimal".into(),
            best.iter().map(|&a| arms[a]).collect(),
            &table
                .iter()
                .zip(&best)
                .map(|(row, &a)| &row[a])
                .collect::<Vec<_>>(),
            None,
        );
        let traces = learners
            .iter_mut()
            .map(|policy| {
                let mut omegas = Vec::with_capacity(t_len);
                let mut picked = Vec::with_capacity(t_len);
                for (t, row) in table.iter().enumerate() {
                    let w = policy.choose(contexts[t]);
                    let o = &row[arm_index(w)];
                    policy.observe(o.iterations as f64);
                    omegas.push(w);
                    picked.push(o);
                }
                trace(policy.name(), omegas, &picked, policy.probabilities())
            })
            .collect();
        (fixed, oracle, traces)
    } else {
        let run = |policy: &mut dyn OmegaPolicy| -> Result<Trace, StepError> {
            let mut state = seq.initial_state();
            let mut omegas = Vec::with_capacity(t_len);
            let mut outcomes = Vec::with_capacity(t_len);
            for (t, &c) in contexts.iter().enumerate() {
                let w = policy.choose(c);
                let (o, next) = seq.solve(t, &state, w)?;
                policy.observe(o.iterations as f64);
                progress(1);
                state = next;
                omegas.push(w);
                outcomes.push(o);
            }
            Ok(trace(
                policy.name(),
                omegas,
                &outcomes.iter().collect::<Vec<_>>(),
                policy.probabilities(),
            ))
        };
        let fixed = arms
            .par_iter()
            .map(|&w| {
                let mut p = super::policy::FixedOmega { omega: w };
                run(&mut p).map(|mut tr| {
                    tr.name = format!("ω = {w:.2}");
                    tr
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The oracle tries every arm from its own current state and keeps the cheapest.
        let mut state = seq.initial_state();
        let mut omegas = Vec::with_capacity(t_len);
        let mut outcomes = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let tries = arms
                .par_iter()
                .map(|&w| seq.solve(t, &state, w))
                .collect::<Result<Vec<_>, _>>()?;
            progress(arms.len());
            let a = (0..arms.len())
                .min_by_key(|&a| tries[a].0.iterations)
                .unwrap_or(0);
            let (o, next) = tries.into_iter().nth(a).expect("arm exists");
            omegas.push(arms[a]);
            outcomes.push(o);
            state = next;
        }
        let oracle = trace(
            "instance-optimal".into(),
            omegas,
            &outcomes.iter().collect::<Vec<_>>(),
            None,
        );
        let traces = learners
            .par_iter_mut()
            .map(|p| run(p.as_mut()))
            .collect::<Result<Vec<_>, _>>()?;
        (fixed, oracle, traces)
    };
    let best_fixed = (0..fixed.len())
        .min_by_key(|&a| fixed[a].total())
        .unwrap_or(0);
    let model_optimal = model_optimal_trace(seq)?;
    if model_optimal.is_some() {
        progress(t_len);
    }
    Ok(ExperimentReport {
        arms: arms.clone(),
        contexts,
        fixed,
        best_fixed,
        instance_optimal,
        model_optimal,
        learners: learner_traces,
    })
}

/// Solves every instance with its theoretical ω*, along one trajectory; `None` when the sequence
/// has no theory for some instance.
fn model_optimal_trace<S: RelaxSequence>(seq: &S) -> Result<Option<Trace>, StepError> {
    let omegas: Option<Vec<f64>> = (0..seq.len()).map(|t| seq.model_optimal_omega(t)).collect();
    let Some(omegas) = omegas else {
        return Ok(None);
    };
    let outcomes: Vec<StepOutcome> = if seq.stateless() {
        let state = seq.initial_state();
        omegas
            .par_iter()
            .enumerate()
            .map(|(t, &w)| seq.solve(t, &state, w).map(|(o, _)| o))
            .collect::<Result<_, _>>()?
    } else {
        let mut state = seq.initial_state();
        let mut out = Vec::with_capacity(omegas.len());
        for (t, &w) in omegas.iter().enumerate() {
            let (o, next) = seq.solve(t, &state, w)?;
            out.push(o);
            state = next;
        }
        out
    };
    Ok(Some(trace(
        "model-optimal ω*".into(),
        omegas,
        &outcomes.iter().collect::<Vec<_>>(),
        None,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relax::policy::linspace;
    use crate::relax::sequence::{HeatSequence, ShiftVariance, ShiftedLaplacianSequence};

    #[test]
    fn oracle_is_never_worse_than_any_fixed_arm_on_a_stateless_sequence() {
        let seq = ShiftedLaplacianSequence::new(6, 60, 2, ShiftVariance::High, 1e-8, 2000);
        let params =
            ExperimentParams::new(linspace(1.0, 1.9, 4), 2000.0, vec![LearnerKind::Tsallis], 0);
        let r = run_experiment(&seq, &params, &|_| {}).unwrap();
        for t in 0..seq.len() {
            let best = r.fixed.iter().map(|f| f.costs[t]).min().unwrap();
            assert_eq!(r.instance_optimal.costs[t], best);
        }
        assert!(r.fixed[r.best_fixed].total() <= r.fixed.iter().map(Trace::total).min().unwrap());
        // Young's ω* per instance is at least as good as any arm of this coarse grid.
        let theory = r
            .model_optimal
            .as_ref()
            .expect("the shifted Laplacian has a theory");
        assert!(
            theory.total() <= r.fixed[r.best_fixed].total(),
            "{} vs {}",
            theory.total(),
            r.fixed[r.best_fixed].total()
        );
        assert_eq!(r.learners[0].costs.len(), 60);
        // Each learner cost is the tabulated cost of the arm it chose.
        for t in 0..seq.len() {
            let a = r
                .arms
                .iter()
                .position(|&w| w == r.learners[0].omegas[t])
                .unwrap();
            assert_eq!(r.learners[0].costs[t], r.fixed[a].costs[t]);
        }
    }

    #[test]
    fn stateful_sequences_run_every_policy_on_its_own_trajectory() {
        let seq = HeatSequence::new(8, 20, 1e-8, 500);
        let params = ExperimentParams::new(
            vec![1.0, 1.5],
            500.0,
            vec![LearnerKind::Binned { bins: 2 }],
            1,
        );
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r = run_experiment(&seq, &params, &|n| {
            calls.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        // 2 fixed runs + the oracle's 2 tries per step + 1 learner run, 20 steps each.
        assert_eq!(calls.into_inner(), 20 * (2 + 2 + 1));
        assert!(r.instance_optimal.total() <= r.fixed[r.best_fixed].total());
        assert!(r.fixed.iter().all(|f| f.unconverged == 0));
    }
}
