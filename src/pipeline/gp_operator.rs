//! The `train` stage for `[train.gp]`: GP operator regression fitted on a dataset's training
//! split and scored on its test split, with calibration.
//!
//! Writes to `output_dir`: `checkpoint.safetensors` (the spec, maps and arrays the posterior is
//! rebuilt from; `pdekit evaluate` reads it alone), `training_report.json` (the fitted
//! hyper-parameters, the fit's timings and memory, test errors and calibration), `predictions.png`
//! (input, truth, prediction, |error| and σ for a few test samples, 2-D data) and
//! `calibration.png` (observed against nominal coverage of central intervals).
//!
//! A GP's features are the values of the training grid, so it predicts on that grid only: data on
//! another grid is refused with an error naming both grids (`--subsample` can bring a finer grid
//! down to the training one). Interpolating silently would score a different operator.

use super::train::{read_split, TrainData, TrainOutcome};
use crate::checkpoint;
use crate::config::train::{GpRegressionPlan, TrainRun};
use crate::plot::training::Prediction;
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Array2;
use pdekit_operators::models::gp::{calibration, GpError, GpOperator, GpProgress};
use pdekit_operators::tensor::Tensor;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Nominal probabilities of the central intervals the calibration reports.
pub const NOMINAL: [f64; 11] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

/// A tensor's values in f64, the GP's precision.
pub(crate) fn values(t: &Tensor<f32>) -> Vec<f64> {
    t.data.iter().map(|&v| v as f64).collect()
}

/// `z` with `P(|N(0, 1)| ≤ z) = p`, by bisection on `erf`.
fn half_width(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 10.0f64);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if libm::erf(mid / std::f64::consts::SQRT_2) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Calibration of a GP's predictions against the truth, as report JSON: ±2σ coverage, mean
/// negative log predictive density, and the observed coverage of each [`NOMINAL`] interval.
pub(crate) fn calibration_json(mean: &[f64], std: &[f64], truth: &[f64]) -> Value {
    let mut z: Vec<f64> = NOMINAL.iter().map(|&p| half_width(p)).collect();
    z.push(2.0);
    let (inside, nlpd, skipped) = calibration(mean, std, truth, &z);
    json!({
        "coverage_2sigma": inside[NOMINAL.len()],
        "nlpd": nlpd,
        "nominal": NOMINAL,
        "observed": &inside[..NOMINAL.len()],
        "values_with_zero_sigma": skipped,
    })
}

/// The GP's mean and σ for the samples of `x`, as tensors shaped like the targets (`like`).
pub(crate) fn predict(
    gp: &GpOperator,
    x: &Tensor<f32>,
    like: &[usize],
) -> Result<(Tensor<f64>, Tensor<f64>), GpError> {
    let m = x.shape[0];
    let p = gp.predict(&values(x), m)?;
    let mut shape = like.to_vec();
    shape[0] = m;
    let t = |v| Tensor::from_vec(&shape, v).expect("sized by the GP's output size");
    Ok((t(p.mean), t(p.std)))
}

/// Why data on grid `grid` with the given sizes does not fit a GP trained on `trained`, or `None`.
pub(super) fn grid_mismatch(gp: &GpOperator, x: &Tensor<f32>, y: &Tensor<f32>) -> Option<String> {
    let per = |t: &Tensor<f32>| t.data.len() / t.shape[0].max(1);
    (per(x) != gp.spec.input_size || per(y) != gp.spec.output_size).then(|| {
        format!(
            "its samples hold {} input and {} output values (grid {:?}), the GP was fitted on {} and {}; a GP predicts on its training grid only (use --subsample to bring a finer grid down to it)",
            per(x),
            per(y),
            x.grid(),
            gp.spec.input_size,
            gp.spec.output_size
        )
    })
}

pub fn fit(
    run: &TrainRun,
    plan: &GpRegressionPlan,
    config: &Path,
    rep: Reporter,
    force: bool,
    interrupted: &AtomicBool,
) -> Result<TrainOutcome, PdekitError> {
    let key = "train.gp";
    let started = Instant::now();
    let TrainData {
        input,
        output,
        dims,
        x,
        y,
        tx,
        ty,
    } = read_split(run, config, key, None)?;
    let (n, n_test) = (run.train_samples, run.test_samples);
    let ckpt_path = run.output_dir.join("checkpoint.safetensors");
    let _lock = crate::files::WriteLock::acquire(&ckpt_path)?;
    let mut data_meta = super::train::split_meta(run, &input, &output, [&x, &y, &tx, &ty]);
    data_meta["grid"] = json!(x.grid());
    let gp_error = |source| PdekitError::GpOperator {
        config: config.to_path_buf(),
        source,
    };
    // A finished fit of the same section on the same data is reused, as a finished training run
    // resumes to its end.
    let reused = if ckpt_path.exists() && !force {
        let stored = checkpoint::Stored::open(&ckpt_path)?;
        let loaded = checkpoint::gp_from_stored(&stored).map_err(|_| {
            PdekitError::Usage(format!(
                "{}: holds another model; rerun with --force to fit the GP in its place",
                ckpt_path.display()
            ))
        })?;
        if loaded.gp.spec.section != plan.gp || loaded.gp.spec.seed != plan.seed {
            return Err(PdekitError::Usage(format!(
                "{}: holds a GP of other settings; rerun with --force to fit again",
                ckpt_path.display()
            )));
        }
        if let Some(why) = super::train::same_data(&loaded.data, &data_meta) {
            return Err(PdekitError::Usage(format!(
                "{}: was fitted on other data ({why}); rerun with --force to fit again",
                ckpt_path.display()
            )));
        }
        rep.info(format!("reusing the GP fitted in {}", ckpt_path.display()));
        let info: Value = stored.json("fit")?;
        Some((loaded.gp, info))
    } else {
        None
    };
    let (gp, info) = match reused {
        Some(r) => r,
        None => {
            let (xs, ys) = (values(&x), values(&y));
            let bar = rep.bar(plan.gp.iterations as u64, "fit GP", "iterations");
            let (gp, info) = GpOperator::fit(&plan.gp, &xs, &ys, n, plan.seed, |p| {
                match p {
                    GpProgress::Hyper {
                        iteration, nlml, ..
                    } => {
                        bar.set_position(iteration as u64);
                        bar.set_message(format!("−log marginal likelihood per value {nlml:.4}"));
                    }
                    GpProgress::Posterior => {
                        bar.set_message(format!("factorising the posterior over {n} samples"))
                    }
                }
                !interrupted.load(Ordering::SeqCst)
            })
            .map_err(|e| match e {
                GpError::Interrupted => PdekitError::FitInterrupted {
                    what: format!("the GP of {}", config.display()),
                },
                other => gp_error(other),
            })?;
            bar.finish_and_clear();
            checkpoint::save_gp(&ckpt_path, &gp, &info, data_meta.clone())?;
            let info = serde_json::to_value(&info).expect("plain data");
            (gp, info)
        }
    };
    let predicted = Instant::now();
    let (mean, std) = predict(&gp, &tx, &ty.shape).map_err(gp_error)?;
    let predict_seconds = predicted.elapsed().as_secs_f64();
    let truth = Tensor::from_vec(&ty.shape, values(&ty)).expect("the test targets' shape");
    let errors = super::evaluate::score(&mean, &truth, n).map_err(|source| PdekitError::Model {
        what: format!("{}: the test errors", config.display()),
        source,
    })?;
    let calib = calibration_json(&mean.data, &std.data, &truth.data);
    let final_l2 = errors.overall["rel_l2"].as_f64().unwrap_or(f64::NAN);
    let mut doc = json!({
        "config": config,
        "threads": rayon::current_num_threads(),
        "model": gp.spec,
        "fit": info,
        "final": {
            "test_l2": final_l2,
            "test_h1": errors.overall["rel_h1"],
            "coverage_2sigma": calib["coverage_2sigma"],
            "nlpd": calib["nlpd"],
        },
        "calibration": calib,
        "test_per_sample": errors.rows,
        "predict_seconds": predict_seconds,
        "total_seconds": started.elapsed().as_secs_f64(),
        "checkpoint_bytes": gp.stored_bytes(),
        "peak_rss_mib": crate::meta::peak_rss_mib(),
        "checkpoint": ckpt_path,
    });
    let report =
        crate::files::write_report(&run.output_dir.join("training_report.json"), &mut doc)?;
    let mut figures = vec![crate::plot::training::calibration(
        &run.output_dir,
        run.format,
        &NOMINAL,
        &doc["calibration"]["observed"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
            .unwrap_or_default(),
    )?];
    if dims == 2 && run.panels > 0 {
        let k = run.panels.min(n_test);
        let (s0, s1) = (tx.grid()[0], tx.grid()[1]);
        let field = |data: &dyn Fn(usize) -> f64, b: usize, c: usize, ch: usize| {
            Array2::from_shape_fn((s0, s1), |(i, j)| data(((b * s0 + i) * s1 + j) * ch + c))
        };
        let last = ty.channels() - 1;
        let samples: Vec<Prediction> = (0..k)
            .map(|b| Prediction {
                input: field(&|i| tx.data[i] as f64, b, 0, tx.channels()),
                truth: field(&|i| truth.data[i], b, last, ty.channels()),
                prediction: field(&|i| mean.data[i], b, last, ty.channels()),
                std: Some(field(&|i| std.data[i], b, last, ty.channels())),
            })
            .collect();
        figures.push(crate::plot::training::predictions(
            &run.output_dir,
            run.format,
            &samples,
        )?);
    }
    let fit_seconds = info["hyper_seconds"].as_f64().unwrap_or(0.0)
        + info["posterior_seconds"].as_f64().unwrap_or(0.0);
    rep.info(format!(
        "fitted the GP ({} kernel, {} posterior on {n} samples) in {fit_seconds:.1} s: test relative L2 {final_l2:.4e}, ±2σ coverage {:.3}, NLPD {:.3}\nwrote {}, {} and {} figures in {}",
        plan.gp.kernel.name(),
        info["posterior"].as_str().unwrap_or("?"),
        calib["coverage_2sigma"].as_f64().unwrap_or(f64::NAN),
        calib["nlpd"].as_f64().unwrap_or(f64::NAN),
        ckpt_path.display(),
        report.display(),
        figures.len(),
        run.output_dir.display()
    ));
    Ok(TrainOutcome {
        epochs: 0,
        final_test_l2: final_l2,
        checkpoint: ckpt_path,
        report,
        figures,
    })
}

#[cfg(test)]
mod tests {
    use super::half_width;

    #[test]
    fn interval_half_widths_are_the_normal_quantiles() {
        assert!((half_width(0.95) - 1.959964).abs() < 1e-5);
        assert!((half_width(0.5) - 0.674490).abs() < 1e-5);
    }
}
