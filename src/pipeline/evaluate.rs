//! `pdekit evaluate`: a checkpoint's model scored on a dataset, per sample and overall; a GP's
//! also by its calibration (±2σ coverage, NLPD, coverage per nominal interval).

use super::train::{data_dims, field_dims, nonzero_targets, read_tensor, resolve};
use crate::checkpoint::{self, Stored};
use crate::data::{DataError, Dataset};
use crate::PdekitError;
use pdekit_operators::tensor::{NnError, Real, Tensor};
use pdekit_operators::train::loss::{relative_h1, relative_l2};
use pdekit_operators::train::trainer::predict;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Per-sample errors and their means (the maximum for `max_error`).
pub struct Scores {
    pub rows: Vec<Value>,
    pub overall: Value,
}

/// Relative L2 and H1, RMSE and max error of each sample of `pred` against `truth`; rows are
/// numbered from `start`.
pub fn score<T: Real>(
    pred: &Tensor<T>,
    truth: &Tensor<T>,
    start: usize,
) -> Result<Scores, NnError> {
    let n = pred.shape[0];
    let per = pred.data.len() / n.max(1);
    let mut rows = Vec::with_capacity(n);
    for b in 0..n {
        let one = |t: &Tensor<T>| {
            let mut shape = t.shape.clone();
            shape[0] = 1;
            Tensor::from_vec(&shape, t.data[b * per..(b + 1) * per].to_vec()).expect("a sample")
        };
        let (p, t) = (one(pred), one(truth));
        let l2 = relative_l2(&p, &t)?.0;
        let h1 = relative_h1(&p, &t)?.0;
        let (mut se, mut max) = (0.0f64, 0.0f64);
        for (a, c) in p.data.iter().zip(&t.data) {
            let d = (a.to_f64().unwrap_or(f64::NAN) - c.to_f64().unwrap_or(f64::NAN)).abs();
            se += d * d;
            max = max.max(d);
        }
        rows.push(json!({"sample": start + b, "rel_l2": l2, "rel_h1": h1, "rmse": (se / per as f64).sqrt(), "max_error": max}));
    }
    let mean = |k: &str| {
        rows.iter()
            .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
            .sum::<f64>()
            / n as f64
    };
    let overall = json!({
        "rel_l2": mean("rel_l2"), "rel_h1": mean("rel_h1"), "rmse": mean("rmse"),
        "max_error": rows.iter().map(|r| r["max_error"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max),
    });
    Ok(Scores { rows, overall })
}

/// The model a checkpoint holds.
enum Scored {
    Neural(Box<checkpoint::Loaded>),
    Gp(Box<checkpoint::LoadedGp>),
}

/// Per-sample and overall errors of a checkpoint's model on a dataset.
pub struct EvalOutcome {
    pub table: String,
    pub json: PathBuf,
    pub mean_l2: f64,
}

/// Which rows and grid `pdekit evaluate` scores, and where it writes the JSON.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The first row scored (e.g. the test split of the training file).
    pub start: usize,
    /// How many rows from `start` (default: to the end of the file).
    pub samples: Option<usize>,
    /// Every k-th grid point of each axis (1: the data's grid).
    pub subsample: usize,
    /// The JSON's path (default: beside the checkpoint).
    pub out: Option<PathBuf>,
    /// Where to write the predictions as `.npy` (default: not written).
    pub predictions: Option<PathBuf>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            start: 0,
            samples: None,
            subsample: 1,
            out: None,
            predictions: None,
        }
    }
}

pub fn evaluate(
    checkpoint_path: &Path,
    data: &Path,
    opts: &EvalOptions,
) -> Result<EvalOutcome, PdekitError> {
    let (start, subsample) = (opts.start, opts.subsample);
    if subsample == 0 {
        return Err(PdekitError::Usage(
            "--subsample must be at least 1 (1 keeps the data's grid)".into(),
        ));
    }
    let stored = Stored::open(checkpoint_path)?;
    let mut model = if stored.kind()? == "gp" {
        Scored::Gp(Box::new(checkpoint::gp_from_stored(&stored)?))
    } else {
        Scored::Neural(Box::new(checkpoint::from_stored(&stored)?))
    };
    drop(stored);
    let meta = match &model {
        Scored::Neural(l) => l.data.clone(),
        Scored::Gp(l) => l.data.clone(),
    };
    let ds = Dataset::open(data)?;
    let field = |k: &str| meta[k].as_str().unwrap_or("").to_string();
    let input = resolve(&ds, &field("input"), "inputs")?;
    let output = resolve(&ds, &field("output"), "outputs")?;
    if start >= ds.len() {
        return Err(PdekitError::Usage(format!(
            "--start {start}: {} holds {} samples (rows 0..{})",
            data.display(),
            ds.len(),
            ds.len()
        )));
    }
    let n = opts
        .samples
        .unwrap_or(ds.len() - start)
        .min(ds.len() - start);
    if n == 0 {
        return Err(PdekitError::Usage("--samples must be at least 1".into()));
    }
    let dims = match &model {
        Scored::Neural(l) => data_dims(
            &ds,
            &input,
            &output,
            l.model.spec().dims(),
            &format!("the model of {}", checkpoint_path.display()),
        )?,
        Scored::Gp(_) => field_dims(&ds, &input, &output)?,
    };
    let rows = start..start + n;
    let x = read_tensor(&ds, &input, rows.clone(), dims)?.subsample(subsample);
    let y = read_tensor(&ds, &output, rows, dims)?.subsample(subsample);
    nonzero_targets(&ds, &output, &y, start)?;
    let usage = |source| PdekitError::Model {
        what: format!("{} on {}", checkpoint_path.display(), data.display()),
        source,
    };
    let (scores, calibration) = match &mut model {
        Scored::Neural(loaded) => {
            let spec = loaded.model.spec();
            let fits = |field: &str, channels: usize, wanted: usize| {
                if channels == wanted {
                    return Ok(());
                }
                Err(DataError::Shape {
                    what: format!("{}: field `{field}`", data.display()),
                    expected: format!(
                        "{wanted} channels, as the model of {} was trained on",
                        checkpoint_path.display()
                    ),
                    got: format!("{channels}"),
                })
            };
            fits(&input, x.channels(), spec.in_channels())?;
            fits(&output, y.channels(), spec.out_channels())?;
            if x.grid() != y.grid() {
                return Err(DataError::Shape {
                    what: format!("{}: fields `{input}` and `{output}`", data.display()),
                    expected: "the same grid for input and output".into(),
                    got: format!("{:?} and {:?}", x.grid(), y.grid()),
                }
                .into());
            }
            let pred = predict(&mut loaded.model, (&loaded.x_norm, &loaded.y_norm), &x, 16)
                .map_err(usage)?;
            if let Some(path) = &opts.predictions {
                crate::interop::npy::write_f32(path, &pred.shape, &pred.data)?;
            }
            (score(&pred, &y, start).map_err(usage)?, None)
        }
        Scored::Gp(loaded) => {
            if let Some(why) = super::gp_operator::grid_mismatch(&loaded.gp, &x, &y) {
                return Err(PdekitError::Usage(format!(
                    "{}: does not fit the GP of {}: {why}",
                    data.display(),
                    checkpoint_path.display()
                )));
            }
            let (mean, std) =
                super::gp_operator::predict(&loaded.gp, &x, &y.shape).map_err(|source| {
                    PdekitError::GpOperator {
                        config: checkpoint_path.to_path_buf(),
                        source,
                    }
                })?;
            let truth = Tensor::from_vec(&y.shape, super::gp_operator::values(&y))
                .expect("the targets' shape");
            if let Some(path) = &opts.predictions {
                let values: Vec<f32> = mean.data.iter().map(|&v| v as f32).collect();
                crate::interop::npy::write_f32(path, &mean.shape, &values)?;
            }
            let calibration =
                super::gp_operator::calibration_json(&mean.data, &std.data, &truth.data);
            (
                score(&mean, &truth, start).map_err(usage)?,
                Some(calibration),
            )
        }
    };
    let Scores { rows, mut overall } = scores;
    if let Some(c) = &calibration {
        overall["coverage_2sigma"] = c["coverage_2sigma"].clone();
        overall["nlpd"] = c["nlpd"].clone();
    }
    let mut doc = json!({
        "checkpoint": checkpoint_path,
        "data": data,
        "grid": x.grid(),
        "subsample": subsample,
        "start": start,
        "samples": n,
        "input": input,
        "output": output,
        "overall": overall,
        "per_sample": rows,
    });
    if let Some(c) = calibration {
        doc["calibration"] = c;
    }
    let mut stem = data
        .file_stem()
        .map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    if start > 0 || n < ds.len() {
        stem = format!("{stem}-rows{start}-{}", start + n);
    }
    if subsample > 1 {
        stem = format!("{stem}-subsample{subsample}");
    }
    let path = opts.out.clone().unwrap_or_else(|| {
        checkpoint_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("evaluation-{stem}.json"))
    });
    let json = crate::files::write_report(&path, &mut doc)?;
    let mut table = format!(
        "{} on {} (rows {}..{}, grid {:?}):\n  relative L2 {:.4e}   relative H1 {:.4e}   RMSE {:.4e}   max error {:.4e}",
        checkpoint_path.display(),
        data.display(),
        start,
        start + n,
        x.grid(),
        doc["overall"]["rel_l2"].as_f64().unwrap_or(f64::NAN),
        doc["overall"]["rel_h1"].as_f64().unwrap_or(f64::NAN),
        doc["overall"]["rmse"].as_f64().unwrap_or(f64::NAN),
        doc["overall"]["max_error"].as_f64().unwrap_or(f64::NAN),
    );
    if let Some(c) = doc.get("calibration") {
        table.push_str(&format!(
            "\n  ±2σ coverage {:.4}   NLPD {:.4}",
            c["coverage_2sigma"].as_f64().unwrap_or(f64::NAN),
            c["nlpd"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    Ok(EvalOutcome {
        table,
        json,
        mean_l2: doc["overall"]["rel_l2"].as_f64().unwrap_or(f64::NAN),
    })
}
