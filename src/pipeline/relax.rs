//! The `relax` stage: online choice of the SOR/SSOR parameter ω over a sequence of systems.
//!
//! Runs the configured learners beside three baselines (ω = 1, the best fixed ω in hindsight found by
//! running every arm on every instance, and the instance-optimal oracle), `repeats` times with
//! consecutive seeds, and writes a JSON report and plots of the first run.

use crate::config::relax::Learner;
use crate::config::{RelaxPlan, RelaxSequenceKind};
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_solvers::relax::experiment::{
    run_experiment, ExperimentParams, ExperimentReport, LearnerKind, Trace,
};
use pdekit_solvers::relax::policy::linspace;
use pdekit_solvers::relax::sequence::{HeatSequence, ShiftedLaplacianSequence};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Summary of one policy over all repeats.
#[derive(Debug, Clone)]
pub struct PolicySummary {
    pub name: String,
    /// Mean cost per instance, one entry per repeat.
    pub mean: Vec<f64>,
    pub last_quarter_mean: Vec<f64>,
    pub unconverged: usize,
}

fn avg(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Runs the experiment of `plan` and writes its report; returns the per-policy summaries.
pub fn run(plan: &RelaxPlan, rep: Reporter) -> Result<Vec<PolicySummary>, PdekitError> {
    let started = Instant::now();
    let arms = linspace(plan.arms.min, plan.arms.max, plan.arms.count);
    let learners: Vec<LearnerKind> = plan
        .learners
        .iter()
        .map(|l| match l {
            Learner::Tsallis => LearnerKind::Tsallis,
            Learner::Binned => LearnerKind::Binned { bins: plan.bins },
            Learner::Chebyshev => LearnerKind::Chebyshev {
                degree: plan.degree,
            },
        })
        .collect();
    let cap = plan.max_iterations;
    let (steps, solves_per_step) = match plan.sequence {
        RelaxSequenceKind::ShiftedLaplacian => (
            plan.shifted_laplacian.as_ref().map_or(0, |s| s.instances),
            arms.len() + 1,
        ),
        RelaxSequenceKind::Heat => (
            plan.heat.as_ref().map_or(0, |h| h.steps),
            2 * arms.len() + learners.len(),
        ),
    };
    let bar = rep.bar(
        (steps * solves_per_step) as u64 * plan.repeats,
        "relax",
        "solves",
    );
    let progress = |n: usize| bar.inc(n as u64);
    let mut reports = Vec::with_capacity(plan.repeats as usize);
    for r in 0..plan.repeats {
        let seed = plan.seed + r;
        let mut params =
            ExperimentParams::new(arms.clone(), plan.loss_scale, learners.clone(), seed);
        params.tsallis_rate = plan.learning_rate;
        params.gamma0 = plan.gamma0;
        let report = match plan.sequence {
            RelaxSequenceKind::ShiftedLaplacian => {
                let s = plan.shifted_laplacian.as_ref().expect("validated");
                let seq = ShiftedLaplacianSequence::new(
                    s.grid,
                    s.instances,
                    seed,
                    s.variance,
                    plan.tolerance,
                    cap,
                );
                run_experiment(&seq, &params, &progress)
            }
            RelaxSequenceKind::Heat => {
                let h = plan.heat.as_ref().expect("validated");
                let seq = HeatSequence::new(h.grid, h.steps, plan.tolerance, cap);
                run_experiment(&seq, &params, &progress)
            }
        }?;
        reports.push(report);
    }
    bar.finish_and_clear();

    let summaries = summarise(&reports);
    let seconds = started.elapsed().as_secs_f64();
    let first = &reports[0];
    let json_path = plan.output_dir.join("learned_sor.json");
    write_json(&json_path, plan, &reports, &summaries, seconds)?;
    let what = match plan.sequence {
        RelaxSequenceKind::ShiftedLaplacian => "SOR iterations",
        RelaxSequenceKind::Heat => "SSOR-PCG iterations",
    };
    let figures = crate::plot::relax::figures(&plan.output_dir, plan.format, what, first)?;

    let mut table = format!(
        "{:<32} {:>12} {:>18} {:>12}\n",
        "policy", "mean iters", "last-quarter mean", "unconverged"
    );
    for s in &summaries {
        table.push_str(&format!(
            "{:<32} {:>12.1} {:>18.1} {:>12}\n",
            s.name,
            avg(&s.mean),
            avg(&s.last_quarter_mean),
            s.unconverged
        ));
    }
    rep.info(format!(
        "relax: {} instances × {} repeats in {:.1} s (means over repeats)\n{table}wrote {} and {} figures in {}",
        steps,
        plan.repeats,
        seconds,
        json_path.display(),
        figures.len(),
        plan.output_dir.display()
    ));
    Ok(summaries)
}

/// Learners first, then ω = 1 (the first arm when the grid starts at 1), best fixed, instance-optimal.
fn summarise(reports: &[ExperimentReport]) -> Vec<PolicySummary> {
    let n = reports[0].learners.len();
    let mut out = Vec::new();
    let mut push = |name: String, pick: &dyn Fn(&ExperimentReport) -> &Trace| {
        out.push(PolicySummary {
            name,
            mean: reports.iter().map(|r| pick(r).mean()).collect(),
            last_quarter_mean: reports
                .iter()
                .map(|r| pick(r).last_quarter_mean())
                .collect(),
            unconverged: reports.iter().map(|r| pick(r).unconverged).sum(),
        });
    };
    for i in 0..n {
        push(reports[0].learners[i].name.clone(), &|r| &r.learners[i]);
    }
    let first_arm = reports[0].arms[0];
    push(format!("fixed ω = {first_arm:.2} (first arm)"), &|r| {
        &r.fixed[0]
    });
    push("best fixed ω in hindsight".into(), &|r| {
        &r.fixed[r.best_fixed]
    });
    push("instance-optimal".into(), &|r| &r.instance_optimal);
    if reports.iter().all(|r| r.model_optimal.is_some()) {
        push("model-optimal ω* (Young)".into(), &|r| {
            r.model_optimal.as_ref().expect("checked")
        });
    }
    out
}

fn trace_json(t: &Trace) -> serde_json::Value {
    json!({
        "name": t.name,
        "total": t.total(),
        "mean": t.mean(),
        "last_quarter_mean": t.last_quarter_mean(),
        "unconverged": t.unconverged,
        "omegas": t.omegas,
        "costs": t.costs,
        "final_probabilities": t.final_probabilities,
    })
}

fn write_json(
    path: &Path,
    plan: &RelaxPlan,
    reports: &[ExperimentReport],
    summaries: &[PolicySummary],
    seconds: f64,
) -> Result<(), PdekitError> {
    let runs: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "seed": plan.seed + i as u64,
                "best_fixed_omega": r.arms[r.best_fixed],
                "fixed": r.fixed.iter().map(|f| json!({"omega": f.omegas.first(), "total": f.total(), "mean": f.mean(), "last_quarter_mean": f.last_quarter_mean(), "unconverged": f.unconverged})).collect::<Vec<_>>(),
                // Full traces only for the first run, to keep the file small.
                "learners": r.learners.iter().map(|t| if i == 0 { trace_json(t) } else { json!({"name": t.name, "mean": t.mean(), "last_quarter_mean": t.last_quarter_mean()}) }).collect::<Vec<_>>(),
                "instance_optimal": if i == 0 { trace_json(&r.instance_optimal) } else { json!({"mean": r.instance_optimal.mean()}) },
                "model_optimal": r.model_optimal.as_ref().map(|m| if i == 0 { trace_json(m) } else { json!({"mean": m.mean()}) }),
                "contexts": if i == 0 { json!(r.contexts) } else { json!(null) },
            })
        })
        .collect();
    let doc = json!({
        "plan": plan,
        "arms": reports[0].arms,
        "seconds": seconds,
        "summary": summaries.iter().map(|s| json!({
            "policy": s.name,
            "mean_per_repeat": s.mean,
            "mean": avg(&s.mean),
            "last_quarter_mean_per_repeat": s.last_quarter_mean,
            "last_quarter_mean": avg(&s.last_quarter_mean),
            "unconverged": s.unconverged,
        })).collect::<Vec<_>>(),
        "runs": runs,
    });
    crate::files::write_json(path, &doc)?;
    Ok(())
}
