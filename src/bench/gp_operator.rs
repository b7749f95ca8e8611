//! `pdekit bench gp-operator CONFIG`: GP operator regression on a config's `[train]` split, timed
//! part by part (hyper-parameter fit, posterior, prediction), then the same hyper-parameters with
//! DTC (Nyström) posteriors of `--inducing` sizes (the error/time/memory trade-off), and with
//! `--peers` scikit-learn's `GaussianProcessRegressor` on the same features, targets and
//! hyper-parameters, side by side.

use super::{read_peer_json, run_peer_script, stamp};
use crate::config::bench::RESULTS_DIR;
use crate::config::train::Learner;
use crate::config::Plan;
use crate::data::DataError;
use crate::pipeline::evaluate::score;
use crate::pipeline::gp_operator::{calibration_json, predict, values};
use crate::pipeline::train::{read_split, TrainData};
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_operators::models::gp::{GpOperator, GpSection, EXACT_LIMIT};
use pdekit_operators::tensor::Tensor;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Outcome {
    pub table: String,
    pub json: PathBuf,
}

/// Writes a row-major f64 matrix as a NumPy `.npy` file (format 1.0).
fn write_npy(path: &Path, rows: usize, cols: usize, values: &[f64]) -> Result<(), DataError> {
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::files::write_bytes_atomic(path, &bytes).map(|_| ())
}

/// Reads a row-major f64 `.npy` file written by NumPy (format 1.x, little-endian, C order).
fn read_npy(path: &Path) -> Result<Vec<f64>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let bad = |m: &str| DataError::Corrupt {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).map_err(|_| bad("bad header"))?;
    if !header.contains("'<f8'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian f64 in C order"));
    }
    Ok(bytes[10 + len..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// One posterior's figures on the test split.
fn scored(
    gp: &GpOperator,
    tx: &Tensor<f32>,
    ty: &Tensor<f32>,
    start: usize,
) -> Result<(Value, f64), PdekitError> {
    let t = Instant::now();
    let (mean, std) = predict(gp, tx, &ty.shape).map_err(|source| PdekitError::GpOperator {
        config: PathBuf::from("bench"),
        source,
    })?;
    let predict_seconds = t.elapsed().as_secs_f64();
    let truth = Tensor::from_vec(&ty.shape, values(ty)).expect("the test targets' shape");
    let s = score(&mean, &truth, start).map_err(|source| PdekitError::Model {
        what: "bench gp-operator: the test errors".into(),
        source,
    })?;
    let c = calibration_json(&mean.data, &std.data, &truth.data);
    let l2 = s.overall["rel_l2"].as_f64().unwrap_or(f64::NAN);
    Ok((
        json!({"test_l2": l2, "coverage_2sigma": c["coverage_2sigma"], "nlpd": c["nlpd"], "predict_seconds": predict_seconds}),
        l2,
    ))
}

pub fn run(
    plan: &Plan,
    reporter: &Reporter,
    inducing: &[usize],
    python: Option<&Path>,
) -> Result<Outcome, PdekitError> {
    let config = &plan.source_path;
    let (run, gp_plan) = match plan.train.as_ref().map(|t| (&t.run, &t.learner)) {
        Some((run, Learner::Gp(g))) => (run, g),
        Some((_, Learner::Neural(_))) => {
            return Err(PdekitError::Usage(format!(
                "{}: [train] has a neural operator; bench gp-operator needs [train.gp]",
                config.display()
            )))
        }
        None => {
            return Err(PdekitError::Usage(format!(
                "{}: the config has no [train] section with [train.gp]",
                config.display()
            )))
        }
    };
    if let Some(&m) = inducing.iter().find(|&&m| m == 0) {
        return Err(PdekitError::Usage(format!(
            "--inducing {m}: expected sizes ≥ 1"
        )));
    }
    let TrainData { x, y, tx, ty, .. } = read_split(run, config, "train.gp", None)?;
    let n = run.train_samples;
    let (xs, ys) = (values(&x), values(&y));
    let fail = |source| PdekitError::GpOperator {
        config: config.clone(),
        source,
    };
    let section = &gp_plan.gp;
    let bar = reporter.bar(section.iterations as u64, "fit GP", "iterations");
    let started = Instant::now();
    let (gp, info) = GpOperator::fit(section, &xs, &ys, n, gp_plan.seed, |p| {
        if let pdekit_operators::models::gp::GpProgress::Hyper { iteration, .. } = p {
            bar.set_position(iteration as u64);
        }
        true
    })
    .map_err(fail)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let (main, main_l2) = scored(&gp, &tx, &ty, n)?;
    let mut rows = vec![json!({
        "posterior": info.posterior,
        "hyper_seconds": info.hyper_seconds,
        "posterior_seconds": info.posterior_seconds,
        "fit_seconds": fit_seconds,
        "peak_matrix_mib": info.peak_matrix_bytes as f64 / 1048576.0,
        "result": main,
    })];
    let mut table = format!(
        "GP operator ({} kernel) on {} train / {} test samples, {} features, {} targets, {} threads:\n  hyper-parameters ({} samples, {} L-BFGS iterations) {:.2} s; {} posterior {:.2} s; test L2 {main_l2:.4e}, ±2σ coverage {:.3}",
        section.kernel.name(),
        n,
        run.test_samples,
        info.feature_size,
        info.target_size,
        rayon::current_num_threads(),
        info.fit_samples,
        info.optimizer.as_ref().map_or(0, |o| o.iterations),
        info.hyper_seconds,
        info.posterior,
        info.posterior_seconds,
        main["coverage_2sigma"].as_f64().unwrap_or(f64::NAN),
    );
    for &m in inducing {
        let dtc = GpSection {
            inducing: Some(m),
            ..section.clone()
        };
        let (g, i) =
            GpOperator::fit_fixed(&dtc, &info.hyper, &xs, &ys, n, gp_plan.seed).map_err(fail)?;
        let (r, l2) = scored(&g, &tx, &ty, n)?;
        table.push_str(&format!(
            "\n  {} posterior (same hyper-parameters) {:.2} s, {:.0} MiB of matrices: test L2 {l2:.4e}, ±2σ coverage {:.3}",
            i.posterior,
            i.posterior_seconds,
            i.peak_matrix_bytes as f64 / 1048576.0,
            r["coverage_2sigma"].as_f64().unwrap_or(f64::NAN)
        ));
        rows.push(json!({
            "posterior": i.posterior,
            "posterior_seconds": i.posterior_seconds,
            "peak_matrix_mib": i.peak_matrix_bytes as f64 / 1048576.0,
            "result": r,
        }));
    }
    let mut peer = Value::Null;
    if let Some(python) = python {
        let Some((features, targets)) = gp.training_arrays() else {
            return Err(PdekitError::Usage(format!(
                "--peers compares exact posteriors; {} holds more than {EXACT_LIMIT} training samples or sets inducing",
                config.display()
            )));
        };
        let ls = &info.hyper.lengthscales;
        if section.linear && ls.len() > 1 {
            return Err(PdekitError::Usage(format!(
                "{}: --peers runs a linear part only with one length-scale (ard = false)",
                config.display()
            )));
        }
        let dir = PathBuf::from("data/bench/gp_operator");
        std::fs::create_dir_all(&dir).map_err(|e| DataError::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let (r, pt, m) = (info.feature_size, info.target_size, run.test_samples);
        // The peer sees features divided by their length-scales and runs with length-scale 1; its
        // linear part σₗ² fᵀf'/r is then (σₗ² ℓ²/r) zᵀz'.
        let scale = |f: &[f64]| -> Vec<f64> {
            f.iter()
                .enumerate()
                .map(|(k, v)| v / if ls.len() == 1 { ls[0] } else { ls[k % r] })
                .collect()
        };
        let test_features = gp.features(&values(&tx), m).map_err(fail)?;
        let file = |name: &str| dir.join(name);
        write_npy(&file("train_features.npy"), n, r, &scale(features))?;
        write_npy(&file("train_targets.npy"), n, pt, targets)?;
        write_npy(&file("test_features.npy"), m, r, &scale(&test_features))?;
        let job = json!({
            "train_features": file("train_features.npy"),
            "train_targets": file("train_targets.npy"),
            "test_features": file("test_features.npy"),
            "predictions": file("predictions.npy"),
            "kernel": section.kernel.name(),
            "hyper": info.hyper,
            "linear_weight": info.hyper.linear_variance * ls[0] * ls[0] / r as f64,
        });
        let job_path = file("job.json");
        crate::files::write_bytes_atomic(&job_path, job.to_string().as_bytes())?;
        let out = file("peer.json");
        run_peer_script(
            python,
            "gp_operator_sklearn.py",
            &[&job_path, &out],
            reporter,
        )?;
        let mut doc = read_peer_json(out)?;
        let theirs = read_npy(&file("predictions.npy"))?;
        let ours = gp.predict_targets(&values(&tx), m).map_err(fail)?;
        if theirs.len() != ours.len() {
            return Err(PdekitError::Peer(format!(
                "the peer predicted {} values, expected {}",
                theirs.len(),
                ours.len()
            )));
        }
        // Their predictions scored in the data's units like ours.
        let theirs_data = gp.from_targets(&theirs, m);
        let truth = Tensor::from_vec(&ty.shape, values(&ty)).expect("the test targets' shape");
        let their = Tensor::from_vec(&ty.shape, theirs_data).expect("the test targets' shape");
        let their_l2 = score(&their, &truth, n)
            .map_err(|source| PdekitError::Model {
                what: "bench gp-operator: the peer's errors".into(),
                source,
            })?
            .overall["rel_l2"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
            / ours.iter().map(|a| a * a).sum::<f64>().sqrt();
        let peer_fit = doc["fit_seconds"].as_f64().unwrap_or(f64::NAN);
        let peer_predict = doc["predict_seconds"].as_f64().unwrap_or(f64::NAN);
        let our_predict = main["predict_seconds"].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "\n  scikit-learn, same hyper-parameters: posterior {peer_fit:.2} s (pdekit {:.2} s, {:.2}×), prediction with σ {peer_predict:.2} s (pdekit {our_predict:.2} s); test L2 {their_l2:.4e}; the two means differ by {diff:.1e} relative",
            info.posterior_seconds,
            info.posterior_seconds / peer_fit,
        ));
        doc["test_l2"] = json!(their_l2);
        doc["relative_difference_of_means"] = json!(diff);
        peer = doc;
    }
    let mut doc = json!({
        "benchmark": "gp-operator",
        "config": config,
        "threads": rayon::current_num_threads(),
        "kernel": section.kernel.name(),
        "train_samples": n,
        "test_samples": run.test_samples,
        "features": info.feature_size,
        "targets": info.target_size,
        "fit": info,
        "posteriors": rows,
        "peer": peer,
    });
    let stem = config
        .file_stem()
        .map_or_else(|| "gp".into(), |s| s.to_string_lossy().into_owned());
    let name = format!("gp-operator-{stem}-{}.json", stamp());
    let json = crate::files::write_report(&PathBuf::from(RESULTS_DIR).join(name), &mut doc)?;
    Ok(Outcome { table, json })
}
