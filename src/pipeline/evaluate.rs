//! `pdekit evaluate`: a checkpoint's model scored on a dataset, per sample and overall.

use super::train::{data_dims, nonzero_targets, read_tensor, resolve};
use crate::checkpoint;
use crate::data::{DataError, Dataset};
use crate::PdekitError;
use pdekit_operators::tensor::Tensor;
use pdekit_operators::train::loss::{relative_h1, relative_l2};
use pdekit_operators::train::trainer::predict;
use serde_json::json;
use std::path::{Path, PathBuf};

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
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            start: 0,
            samples: None,
            subsample: 1,
            out: None,
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
    let mut loaded = checkpoint::load(checkpoint_path)?;
    let ds = Dataset::open(data)?;
    let field = |k: &str| loaded.data[k].as_str().unwrap_or("").to_string();
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
    let dims = data_dims(
        &ds,
        &input,
        &output,
        loaded.model.spec().dims(),
        &format!("the model of {}", checkpoint_path.display()),
    )?;
    let rows = start..start + n;
    let x = read_tensor(&ds, &input, rows.clone(), dims)?.subsample(subsample);
    let y = read_tensor(&ds, &output, rows, dims)?.subsample(subsample);
    nonzero_targets(&ds, &output, &y, start)?;
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
    let usage = |source| PdekitError::Model {
        what: format!("{} on {}", checkpoint_path.display(), data.display()),
        source,
    };
    let pred =
        predict(&mut loaded.model, (&loaded.x_norm, &loaded.y_norm), &x, 16).map_err(usage)?;
    let per = pred.data.len() / n;
    let mut rows = Vec::new();
    for b in 0..n {
        let one = |t: &Tensor<f32>| {
            let mut shape = t.shape.clone();
            shape[0] = 1;
            Tensor::from_vec(&shape, t.data[b * per..(b + 1) * per].to_vec()).expect("a sample")
        };
        let (p, t) = (one(&pred), one(&y));
        let l2 = relative_l2(&p, &t).map_err(usage)?.0;
        let h1 = relative_h1(&p, &t).map_err(usage)?.0;
        let (mut se, mut max) = (0.0f64, 0.0f64);
        for (a, c) in p.data.iter().zip(&t.data) {
            let d = (*a as f64 - *c as f64).abs();
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
    let table = format!(
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
    Ok(EvalOutcome {
        table,
        json,
        mean_l2: doc["overall"]["rel_l2"].as_f64().unwrap_or(f64::NAN),
    })
}
