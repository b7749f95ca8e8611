//! The driver that solves the samples of a dataset in a reproducible schedule and hands each
//! finished sample, in row order, to the caller.
//!
//! Three schedules:
//! - [`Schedule::Independent`]: every sample is solved afresh, a batch at a time in parallel.
//! - [`Schedule::LearnedOmega`]: an SSOR ω per sample, chosen by a Tsallis-INF learner. The
//!   learner decides a whole batch before it is solved and learns from the batch's iteration
//!   counts afterwards, so the choices depend only on the batch size, not on the thread count.
//! - [`Schedule::Chains`]: the samples in a sorted order (neighbours similar), cut into contiguous
//!   chains, each with its own [`SequenceSolver`] whose recycle space and previous solution carry
//!   from sample to sample. Rows are written round by round (the r-th sample of every chain), so a
//!   dataset's row order depends only on the plan.
//!
//! A run can resume after `done` recorded rows: the learner replays the recorded choices and
//! costs ([`replay`]), and chains restart with empty recycle spaces after the recovered rounds.
//! The driver does no I/O: the caller's [`Sink`] writes the rows and decides when to stop.

use super::{order, Ordering, PrecondKind, SequenceError, SequenceSolver, SolverSpec};
use crate::relax::policy::{OmegaPolicy, TsallisInf};
use rayon::prelude::*;
use std::ops::Range;
use thiserror::Error;

/// How the samples of a run are scheduled.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `batch` samples at a time, each solved afresh.
    Independent { batch: u64 },
    /// `batch` samples at a time, each solved by a fresh solver of `spec` with the SSOR ω the
    /// learner chose for it.
    LearnedOmega {
        batch: u64,
        learner: Box<TsallisInf>,
        spec: SolverSpec,
    },
    /// The samples in `ordering`, cut into `chains` contiguous chains solved side by side, each by
    /// its own solver of `spec`.
    Chains {
        ordering: Ordering,
        chains: usize,
        spec: SolverSpec,
    },
}

/// One sample to solve: its index, the ω chosen for it (learned schedules) and, in chain and
/// learned schedules, the solver to use (a chain's, carrying its state; or a fresh one).
pub struct Job<'a> {
    pub index: u64,
    pub omega: Option<f64>,
    pub solver: Option<&'a mut SequenceSolver>,
}

/// Where finished samples go, in row order.
pub trait Sink<S> {
    type Error;
    /// Called before each batch or round is solved; an error stops the run (e.g. an interrupt).
    fn before_batch(&mut self) -> Result<(), Self::Error>;
    /// Called once a chain schedule's order is computed, before any solve.
    fn ordered(&mut self) {}
    /// One finished sample and the ω it was solved with (if chosen by the learner).
    fn record(&mut self, sample: S, omega: Option<f64>) -> Result<(), Self::Error>;
}

/// A learner that cannot be brought back to the state of an interrupted run.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("cannot replay the ω learner: row {row} was solved with ω = {stored}, the replay chose {chosen}")]
pub struct ReplayError {
    pub row: usize,
    pub stored: f64,
    pub chosen: f64,
}

/// Brings a fresh learner to the state it had after the recorded rows of an interrupted run (a
/// whole number of batches): each batch's choices are replayed, then its costs observed, as
/// [`run`] does, so the continued run equals an uninterrupted one.
pub fn replay(
    learner: &mut TsallisInf,
    costs: &[f64],
    omegas: &[f64],
    batch: u64,
) -> Result<(), ReplayError> {
    let b = batch.max(1) as usize;
    for (start, (costs, stored)) in (0..).step_by(b).zip(costs.chunks(b).zip(omegas.chunks(b))) {
        for (k, &w) in stored.iter().enumerate() {
            let chosen = learner.choose(0.0);
            if chosen != w {
                return Err(ReplayError {
                    row: start + k,
                    stored: w,
                    chosen,
                });
            }
        }
        for &c in costs {
            learner.observe(c);
        }
    }
    Ok(())
}

/// Splits a solve order into `chains` contiguous pieces and interleaves them into rounds: round r
/// holds the r-th sample of every chain that has one, as `(chain, sample)`.
pub fn chain_rounds(order: &[u64], chains: usize) -> Vec<Vec<(usize, u64)>> {
    let chains = chains.clamp(1, order.len().max(1));
    let base = order.len() / chains;
    let extra = order.len() % chains;
    let mut pieces = Vec::with_capacity(chains);
    let mut start = 0;
    for c in 0..chains {
        let len = base + usize::from(c < extra);
        pieces.push(&order[start..start + len]);
        start += len;
    }
    let longest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
    (0..longest)
        .map(|r| {
            pieces
                .iter()
                .enumerate()
                .filter_map(|(c, p)| p.get(r).map(|&i| (c, i)))
                .collect()
        })
        .collect()
}

/// Why a driven run stopped early.
#[derive(Debug)]
pub enum DriveError<E> {
    /// A chain's solver could not be built from the spec.
    Solver(SequenceError),
    /// The solve callback or the sink failed.
    Stopped(E),
}

/// The problem side of a driven run.
pub struct Problem<'a, S, E> {
    /// The samples of this run (or shard).
    pub indices: Range<u64>,
    /// Rows already recorded by an interrupted run; they are not solved again.
    pub done: u64,
    /// Features of a sample for ordering (chain schedules only); called in parallel.
    pub features: &'a (dyn Fn(u64) -> Vec<f64> + Sync),
    /// Solves one sample; called in parallel.
    pub solve: &'a (dyn Fn(Job) -> Result<S, E> + Sync),
    /// The cost the learner sees (iterations).
    pub cost: &'a (dyn Fn(&S) -> f64 + Sync),
}

/// Solves the samples of `problem` in `schedule`, handing each to `sink` in row order.
pub fn run<S: Send, E: Send, K: Sink<S, Error = E>>(
    schedule: Schedule,
    problem: &Problem<S, E>,
    sink: &mut K,
) -> Result<(), DriveError<E>> {
    match schedule {
        Schedule::Independent { batch } => run_batches(None, batch, problem, sink),
        Schedule::LearnedOmega {
            batch,
            learner,
            spec,
        } => run_batches(Some((*learner, spec)), batch, problem, sink),
        Schedule::Chains {
            ordering,
            chains,
            spec,
        } => run_chains(ordering, chains, spec, problem, sink),
    }
}

fn run_batches<S: Send, E: Send, K: Sink<S, Error = E>>(
    mut learned: Option<(TsallisInf, SolverSpec)>,
    batch: u64,
    p: &Problem<S, E>,
    sink: &mut K,
) -> Result<(), DriveError<E>> {
    let mut next = p.indices.start + p.done;
    while next < p.indices.end {
        sink.before_batch().map_err(DriveError::Stopped)?;
        let end = (next + batch.max(1)).min(p.indices.end);
        let omegas: Vec<Option<f64>> = (next..end)
            .map(|_| learned.as_mut().map(|(l, _)| l.choose(0.0)))
            .collect();
        let results: Vec<Result<S, DriveError<E>>> = omegas
            .par_iter()
            .enumerate()
            .map(|(k, omega)| {
                let index = next + k as u64;
                let Some(w) = *omega else {
                    let job = Job {
                        index,
                        omega: None,
                        solver: None,
                    };
                    return (p.solve)(job).map_err(DriveError::Stopped);
                };
                let spec = SolverSpec {
                    precond: PrecondKind::ssor(w),
                    ..learned.as_ref().expect("a learned ω comes with its spec").1
                };
                let mut solver = SequenceSolver::new(spec).map_err(DriveError::Solver)?;
                let job = Job {
                    index,
                    omega: Some(w),
                    solver: Some(&mut solver),
                };
                (p.solve)(job).map_err(DriveError::Stopped)
            })
            .collect();
        for (result, omega) in results.into_iter().zip(omegas) {
            let sample = result?;
            if let Some((l, _)) = learned.as_mut() {
                l.observe((p.cost)(&sample));
            }
            sink.record(sample, omega).map_err(DriveError::Stopped)?;
        }
        next = end;
    }
    Ok(())
}

fn run_chains<S: Send, E: Send, K: Sink<S, Error = E>>(
    ordering: Ordering,
    chains: usize,
    spec: SolverSpec,
    p: &Problem<S, E>,
    sink: &mut K,
) -> Result<(), DriveError<E>> {
    let features: Vec<Vec<f64>> = p
        .indices
        .clone()
        .into_par_iter()
        .map(|i| (p.features)(i))
        .collect();
    let sorted: Vec<u64> = order(&features, ordering)
        .into_iter()
        .map(|k| k as u64 + p.indices.start)
        .collect();
    sink.ordered();
    let rounds = chain_rounds(&sorted, chains);
    let n_chains = rounds.first().map_or(0, Vec::len);
    let mut solvers = (0..n_chains)
        .map(|_| SequenceSolver::new(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DriveError::Solver)?;
    let mut done = 0u64;
    for round in &rounds {
        let len = round.len() as u64;
        // Rounds wholly inside the recovered rows were solved by the interrupted run; the chains
        // restart with empty recycle spaces after them.
        if done + len <= p.done {
            done += len;
            continue;
        }
        sink.before_batch().map_err(DriveError::Stopped)?;
        let skip = p.done.saturating_sub(done) as usize;
        let results: Vec<Result<S, E>> = solvers
            .par_iter_mut()
            .zip(round.par_iter())
            .skip(skip)
            .map(|(solver, &(_, index))| {
                (p.solve)(Job {
                    index,
                    omega: None,
                    solver: Some(solver),
                })
            })
            .collect();
        for result in results {
            sink.record(result.map_err(DriveError::Stopped)?, None)
                .map_err(DriveError::Stopped)?;
        }
        done += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::SolveParams;
    use crate::relax::policy::linspace;
    use crate::sequence::Method;

    #[test]
    fn chain_rounds_interleave_contiguous_pieces_of_the_order() {
        let rounds = chain_rounds(&[5, 1, 4, 0, 2, 3, 6], 3);
        // Pieces [5, 1, 4], [0, 2], [3, 6].
        assert_eq!(
            rounds,
            vec![
                vec![(0, 5), (1, 0), (2, 3)],
                vec![(0, 1), (1, 2), (2, 6)],
                vec![(0, 4)]
            ]
        );
        assert_eq!(chain_rounds(&[2, 1], 8), vec![vec![(0, 2), (1, 1)]]);
    }

    /// Records (index, omega) and stops after `stop_after` batches.
    struct Rows {
        rows: Vec<(u64, Option<f64>)>,
        batches: usize,
        stop_after: usize,
    }

    impl Sink<(u64, f64)> for Rows {
        type Error = &'static str;
        fn before_batch(&mut self) -> Result<(), Self::Error> {
            if self.batches == self.stop_after {
                return Err("interrupted");
            }
            self.batches += 1;
            Ok(())
        }
        fn record(&mut self, s: (u64, f64), omega: Option<f64>) -> Result<(), Self::Error> {
            self.rows.push((s.0, omega));
            Ok(())
        }
    }

    fn learner() -> TsallisInf {
        TsallisInf::new(linspace(1.0, 1.95, 20), 1000.0, 16.0, 7)
    }

    fn spec() -> SolverSpec {
        SolverSpec::new(Method::Cg, PrecondKind::None, SolveParams::new(1e-8, 100))
    }

    /// A fake cost that depends on ω, so the learner's choices depend on what it observed.
    fn cost_of(index: u64, omega: f64) -> f64 {
        ((omega - 1.6).abs() * 100.0).round() + (index % 3) as f64
    }

    #[test]
    fn a_learned_run_resumed_from_its_rows_chooses_what_an_uninterrupted_run_chose() {
        let solve = |job: Job| -> Result<(u64, f64), &'static str> {
            assert!(job.solver.is_some());
            Ok((job.index, cost_of(job.index, job.omega.unwrap())))
        };
        let problem = |done| Problem {
            indices: 10..40,
            done,
            features: &|_| Vec::new(),
            solve: &solve,
            cost: &|s: &(u64, f64)| s.1,
        };
        let schedule = |learner| Schedule::LearnedOmega {
            batch: 4,
            learner: Box::new(learner),
            spec: spec(),
        };
        let mut whole = Rows {
            rows: Vec::new(),
            batches: 0,
            stop_after: usize::MAX,
        };
        run(schedule(learner()), &problem(0), &mut whole).unwrap();
        let indices: Vec<u64> = whole.rows.iter().map(|r| r.0).collect();
        assert_eq!(indices, (10..40).collect::<Vec<_>>());

        let mut first = Rows {
            rows: Vec::new(),
            batches: 0,
            stop_after: 3,
        };
        assert!(matches!(
            run(schedule(learner()), &problem(0), &mut first),
            Err(DriveError::Stopped("interrupted"))
        ));
        assert_eq!(first.rows.len(), 12);
        let omegas: Vec<f64> = first.rows.iter().map(|r| r.1.unwrap()).collect();
        let costs: Vec<f64> = first
            .rows
            .iter()
            .map(|r| cost_of(r.0, r.1.unwrap()))
            .collect();
        let mut resumed = learner();
        replay(&mut resumed, &costs, &omegas, 4).unwrap();
        let mut rest = Rows {
            rows: Vec::new(),
            batches: 0,
            stop_after: usize::MAX,
        };
        run(schedule(resumed), &problem(12), &mut rest).unwrap();
        first.rows.extend(rest.rows);
        assert_eq!(first.rows, whole.rows);

        let mut wrong = learner();
        let mut bad = omegas.clone();
        bad[5] = 0.5;
        assert_eq!(
            replay(&mut wrong, &costs, &bad, 4).unwrap_err().row,
            5,
            "a mismatch names the row"
        );
    }

    #[test]
    fn chains_record_rows_round_by_round_and_skip_recovered_rounds() {
        let solve = |job: Job| -> Result<(u64, f64), &'static str> {
            assert!(job.solver.is_some() && job.omega.is_none());
            Ok((job.index, 0.0))
        };
        // One feature per sample, so the greedy order follows the feature.
        let problem = |done| Problem {
            indices: 0..7,
            done,
            features: &|i| vec![[3.0, 0.0, 5.0, 1.0, 6.0, 2.0, 4.0][i as usize]],
            solve: &solve,
            cost: &|_: &(u64, f64)| 0.0,
        };
        let schedule = || Schedule::Chains {
            ordering: Ordering::Natural,
            chains: 3,
            spec: spec(),
        };
        let mut whole = Rows {
            rows: Vec::new(),
            batches: 0,
            stop_after: usize::MAX,
        };
        run(schedule(), &problem(0), &mut whole).unwrap();
        let rows: Vec<u64> = whole.rows.iter().map(|r| r.0).collect();
        // Natural order 0..7 in chains [0, 1, 2], [3, 4], [5, 6].
        assert_eq!(rows, vec![0, 3, 5, 1, 4, 6, 2]);
        for done in 0..7 {
            let mut rest = Rows {
                rows: Vec::new(),
                batches: 0,
                stop_after: usize::MAX,
            };
            run(schedule(), &problem(done), &mut rest).unwrap();
            let tail: Vec<u64> = rest.rows.iter().map(|r| r.0).collect();
            assert_eq!(tail, rows[done as usize..], "resumed after {done} rows");
        }
    }
}
