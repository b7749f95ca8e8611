//! `pdekit bench generate CONFIG`: samples per second of a config's generate stage, and with
//! `--peers` the NumPy reference solver (`bench/peers/generate_numpy.py`) on the same settings.
//!
//! Both sides also solve sample 0's initial condition (pdekit's, in f64) so their outputs can be
//! compared: the relative L2 difference says whether the two ran the same computation.

use super::stamp;
use crate::config::bench::{RESULTS_DIR, SCRATCH_DIR};
use crate::config::Plan;
use crate::data::DataError;
use crate::pipeline::{generate, RunOptions};
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_solvers::problem::FamilyParams;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// What a generate benchmark produced.
pub struct Outcome {
    pub table: String,
    pub json: PathBuf,
}

/// Settings the peer needs to run the same solver, or `None` for families without a peer.
fn peer_spec(plan: &FamilyParams) -> Option<serde_json::Value> {
    let (name, p, dim) = match plan {
        FamilyParams::Burgers(b) => ("burgers", serde_json::to_value(b), 1),
        FamilyParams::NavierStokes(n) => ("navier_stokes", serde_json::to_value(n), 2),
        _ => return None,
    };
    let (per, steps) = match plan {
        FamilyParams::Burgers(b) => b.steps(),
        FamilyParams::NavierStokes(n) => n.steps(),
        _ => unreachable!("matched above"),
    };
    let field = match plan {
        FamilyParams::Burgers(b) => b.field,
        FamilyParams::NavierStokes(n) => n.field,
        _ => unreachable!("matched above"),
    };
    let mut spec = p.ok()?;
    spec["problem"] = json!(name);
    spec["steps"] = json!(steps);
    spec["steps_per_snapshot"] = json!(per);
    spec["alpha"] = json!(field.alpha);
    spec["tau"] = json!(field.tau);
    spec["sigma"] = json!(field.sigma_for_dim(dim));
    Some(spec)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn write_f64(path: &Path, values: &[f64]) -> Result<(), DataError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(io(path))
}

fn read_f64(path: &Path) -> Result<Vec<f64>, DataError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn relative_l2(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let n: f64 = b.iter().map(|y| y * y).sum();
    (d / n).sqrt()
}

/// Runs the benchmark; `samples` overrides the config's count.
pub fn run(
    plan: &Plan,
    reporter: &Reporter,
    samples: Option<u64>,
    python: Option<&Path>,
    interrupted: &AtomicBool,
) -> Result<Outcome, PdekitError> {
    let g = generate::section(plan)?;
    let stem = plan
        .source_path
        .file_stem()
        .map_or_else(|| "config".into(), |s| s.to_string_lossy().into_owned());
    let scratch = PathBuf::from(SCRATCH_DIR).join(format!("generate-{stem}"));
    std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
    let mut bench_plan = plan.clone();
    let mut bg = g.clone();
    bg.dataset.samples = samples.unwrap_or(g.dataset.samples).max(1);
    bg.dataset.output = scratch.join("samples.h5");
    bench_plan.generate = Some(bg.clone());
    let threads = rayon::current_num_threads();
    reporter.info(format!(
        "pdekit: {} samples of {} on {threads} threads",
        bg.dataset.samples, bg.dataset.problem
    ));
    let report = generate::run(
        &bench_plan,
        RunOptions {
            force: true,
            reporter: *reporter,
            shard: None,
        },
        interrupted,
    )?;
    let _ = std::fs::remove_file(&report.output);
    let ours = bg.dataset.samples as f64 / report.seconds;

    // Sample 0 in f64, for the comparison with the peer.
    let family = generate::family(&bg)?;
    let sample0 = family.generate(bg.dataset.seed, 0)?;

    let peer = match (python, peer_spec(&bg.family)) {
        (None, _) => None,
        (Some(_), None) => {
            reporter.warn(format!(
                "no NumPy peer for \"{}\"; the peers cover burgers and navier_stokes",
                bg.dataset.problem
            ));
            None
        }
        (Some(python), Some(mut spec)) => {
            let ic = scratch.join("initial_condition.f64");
            let out = scratch.join("peer_output.f64");
            write_f64(&ic, &sample0.inputs[0])?;
            spec["samples"] = json!(bg.dataset.samples);
            spec["initial_condition"] = json!(ic);
            spec["output"] = json!(out);
            let spec_path = scratch.join("peer_spec.json");
            std::fs::write(&spec_path, spec.to_string()).map_err(io(&spec_path))?;
            let result_path = scratch.join("peer_result.json");
            super::run_peer_script(
                python,
                "generate_numpy.py",
                &[&spec_path, &result_path],
                reporter,
            )?;
            let text = std::fs::read_to_string(&result_path).map_err(io(&result_path))?;
            let mut result: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| DataError::Corrupt {
                    path: result_path.clone(),
                    message: format!("peer output is not JSON: {e}"),
                })?;
            let theirs = read_f64(&out)?;
            // The peer's output for sample 0 is the last output array (Burgers u(T), or the
            // Navier–Stokes trajectory).
            let mine = match bg.family {
                FamilyParams::Burgers(_) => &sample0.outputs[0],
                _ => sample0.outputs.last().expect("one output"),
            };
            if theirs.len() != mine.len() {
                return Err(DataError::Shape {
                    what: out.display().to_string(),
                    expected: format!("{} values", mine.len()),
                    got: format!("{} values", theirs.len()),
                }
                .into());
            }
            result["relative_l2_difference_sample0"] = json!(relative_l2(mine, &theirs));
            Some(result)
        }
    };

    let peer_rate = peer.as_ref().and_then(|p| p["samples_per_second"].as_f64());
    let mut table = format!(
        "{:<28} {:>10} {:>12} {:>14}\n{:<28} {:>10} {:>12.2} {:>14.4}\n",
        "generator",
        "samples",
        "seconds",
        "samples/s",
        format!("pdekit ({threads} threads)"),
        bg.dataset.samples,
        report.seconds,
        ours
    );
    if let Some(p) = &peer {
        table += &format!(
            "{:<28} {:>10} {:>12.2} {:>14.4}\n",
            format!("numpy peer (batch {})", p["batch"]),
            p["samples"],
            p["seconds"].as_f64().unwrap_or(f64::NAN),
            peer_rate.unwrap_or(f64::NAN)
        );
        table += &format!(
            "speed-up: {:.2}×; sample 0 relative L2 difference pdekit vs peer: {:.2e}\n",
            ours / peer_rate.unwrap_or(f64::NAN),
            p["relative_l2_difference_sample0"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    let mut doc = json!({
        "benchmark": "generate",
        "config": plan.source_path,
        "problem": bg.dataset.problem,
        "plan": bg,
        "threads": threads,
        "samples": bg.dataset.samples,
        "seconds": report.seconds,
        "samples_per_second": ours,
        "steps_per_sample": sample0.report.steps,
        "peer": peer,
        "speedup_vs_peer": peer_rate.map(|r| ours / r),
    });
    let json_path = crate::files::write_report(
        &PathBuf::from(RESULTS_DIR).join(format!("generate-{stem}-{}.json", stamp())),
        &mut doc,
    )?;
    Ok(Outcome {
        table,
        json: json_path,
    })
}
