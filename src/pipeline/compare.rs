//! `pdekit compare RUN_DIR...`: training runs side by side. Their test-error curves on one
//! figure, a table of final errors, parameters, time per epoch and peak memory, and one test
//! sample predicted by each, from their checkpoints alone.

use super::train::{read_tensor, resolve};
use crate::checkpoint;
use crate::config::ImageFormat;
use crate::data::Dataset;
use crate::plot::{figure_path, heatmap_panel, line_chart, shared_range, Axis, Heatmap, Line};
use crate::PdekitError;
use ndarray::Array2;
use pdekit_operators::train::trainer::{predict, EpochRecord};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Which test sample the panels show, and where the outputs go.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub out: PathBuf,
    pub format: ImageFormat,
    /// The dataset of the panels (default: the first run's test data).
    pub data: Option<PathBuf>,
    /// Its row (default: the first run's first test row).
    pub row: Option<usize>,
}

/// What `compare` wrote, and the table it printed.
#[derive(Debug)]
pub struct CompareOutcome {
    pub table: String,
    pub json: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// One run, read from its checkpoint.
struct Run {
    label: String,
    checkpoint: PathBuf,
    loaded: checkpoint::Loaded,
}

/// A run directory's checkpoint (or a checkpoint file given directly).
fn checkpoint_of(arg: &Path) -> Result<PathBuf, PdekitError> {
    let path = if arg.is_dir() {
        arg.join("checkpoint.safetensors")
    } else {
        arg.to_path_buf()
    };
    if !path.exists() {
        return Err(PdekitError::Usage(format!(
            "{}: no checkpoint there; give a training run's output_dir (holding checkpoint.safetensors) or a checkpoint file",
            arg.display()
        )));
    }
    Ok(path)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    (!v.is_empty()).then(|| {
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    })
}

pub fn compare(runs: &[PathBuf], opts: &CompareOptions) -> Result<CompareOutcome, PdekitError> {
    if runs.len() < 2 {
        return Err(PdekitError::Usage(format!(
            "compare needs at least two runs, got {}",
            runs.len()
        )));
    }
    let mut loaded = Vec::with_capacity(runs.len());
    for arg in runs {
        let path = checkpoint_of(arg)?;
        let stored = checkpoint::Stored::open(&path)?;
        if stored.kind()? == "gp" {
            return Err(PdekitError::Usage(format!(
                "{}: a GP operator checkpoint; compare takes neural-operator runs (their epochs give the curves)",
                path.display()
            )));
        }
        let l = checkpoint::from_stored(&stored)?;
        if l.state.history.is_empty() {
            return Err(PdekitError::Usage(format!(
                "{}: no epoch finished yet, so there is no test error to compare",
                path.display()
            )));
        }
        loaded.push(Run {
            label: arg.display().to_string(),
            checkpoint: path,
            loaded: l,
        });
    }
    crate::files::create_dir(&opts.out)?;

    // The table and the curves.
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (k, run) in loaded.iter_mut().enumerate() {
        let h: &[EpochRecord] = &run.loaded.state.history;
        let last = h.last().expect("checked non-empty");
        let best = h.iter().map(|r| r.test_l2).fold(f64::INFINITY, f64::min);
        let peak = h.iter().filter_map(|r| r.peak_rss_mib).reduce(f64::max);
        lines.push(Line::nth(
            run.label.clone(),
            h.iter()
                .map(|r| ((r.epoch + 1) as f64, r.test_l2))
                .collect(),
            k,
        ));
        let spec = run.loaded.model.spec();
        rows.push(json!({
            "run": run.label,
            "checkpoint": run.checkpoint,
            "model": spec.name(),
            "parameters": run.loaded.model.parameter_count(),
            "epochs": h.len(),
            "final_test_l2": last.test_l2,
            "final_test_h1": last.test_h1,
            "best_test_l2": best,
            "median_epoch_seconds": median(h.iter().map(|r| r.seconds).collect()),
            "peak_rss_mib": peak,
            "history": h,
        }));
    }
    let mut figures = vec![line_chart(
        &figure_path(&opts.out, "test_error", opts.format),
        opts.format,
        "test relative L2 by epoch",
        Axis::counts("epoch"),
        Axis::log("test relative L2"),
        &lines,
    )?];

    // One test sample through every model.
    let first = &loaded[0].loaded.data;
    let (data, row) = match (&opts.data, opts.row) {
        (Some(d), row) => (d.clone(), row.unwrap_or(0)),
        (None, row) => {
            let (path, default_row) = match first.get("test_data").and_then(Value::as_str) {
                Some(t) => (
                    PathBuf::from(t),
                    first["test_start"].as_u64().unwrap_or(0) as usize,
                ),
                None => (
                    PathBuf::from(first["path"].as_str().unwrap_or_default()),
                    first["train_samples"].as_u64().unwrap_or(0) as usize,
                ),
            };
            if path.as_os_str().is_empty() {
                return Err(PdekitError::Usage(format!(
                    "{}: its checkpoint does not say which data it was trained on; give --data FILE [--row R]",
                    loaded[0].checkpoint.display()
                )));
            }
            (path, row.unwrap_or(default_row))
        }
    };
    let mut sample = json!({"data": data, "row": row});
    let dims = loaded[0].loaded.model.spec().dims();
    if dims == 2 {
        let ds = Dataset::open(&data)?;
        if row >= ds.len() {
            return Err(PdekitError::Usage(format!(
                "--row {row}: {} holds {} samples",
                data.display(),
                ds.len()
            )));
        }
        let field = |k: &str| first[k].as_str().unwrap_or("").to_string();
        let input = resolve(&ds, &field("input"), "inputs")?;
        let output = resolve(&ds, &field("output"), "outputs")?;
        let subsample = first["subsample"].as_u64().unwrap_or(1) as usize;
        let x = read_tensor(&ds, &input, row..row + 1, dims)?.subsample(subsample);
        let y = read_tensor(&ds, &output, row..row + 1, dims)?.subsample(subsample);
        let (s0, s1) = (x.grid()[0], x.grid()[1]);
        let map = |data: &[f32], c: usize, ch: usize| {
            Array2::from_shape_fn((s0, s1), |(i, j)| data[(i * s1 + j) * c + ch] as f64)
        };
        let last = y.channels() - 1;
        let truth = map(&y.data, y.channels(), last);
        let mut predictions = Vec::new();
        for run in &mut loaded {
            let spec = run.loaded.model.spec();
            if spec.dims() != 2
                || spec.in_channels() != x.channels()
                || spec.out_channels() != y.channels()
            {
                return Err(PdekitError::Usage(format!(
                    "{}: its model ({}-D, {} → {} channels) does not take sample {row} of {} ({} → {} channels); give --data FILE of data they all take",
                    run.checkpoint.display(),
                    spec.dims(),
                    spec.in_channels(),
                    spec.out_channels(),
                    data.display(),
                    x.channels(),
                    y.channels()
                )));
            }
            let l = &mut run.loaded;
            let pred = predict(&mut l.model, (&l.x_norm, &l.y_norm), &x, 1).map_err(|source| {
                PdekitError::Model {
                    what: format!(
                        "{} on sample {row} of {}",
                        run.checkpoint.display(),
                        data.display()
                    ),
                    source,
                }
            })?;
            predictions.push(map(&pred.data, pred.channels(), last));
        }
        let errors: Vec<Array2<f64>> = predictions
            .iter()
            .map(|p| (p - &truth).mapv(f64::abs))
            .collect();
        let input_map = map(&x.data, x.channels(), 0);
        let values: Vec<_> = std::iter::once(truth.view())
            .chain(predictions.iter().map(|p| p.view()))
            .collect();
        let range = shared_range(&values);
        let error_range = shared_range(&errors.iter().map(|e| e.view()).collect::<Vec<_>>());
        let mut maps =
            vec![Heatmap::new(format!("truth (row {row})"), truth.view()).with_range(range)];
        for (run, p) in loaded.iter().zip(&predictions) {
            maps.push(Heatmap::new(run.label.clone(), p.view()).with_range(range));
        }
        maps.push(Heatmap::new("input", input_map.view()));
        for (run, e) in loaded.iter().zip(&errors) {
            maps.push(
                Heatmap::new(format!("|error| {}", run.label), e.view()).with_range(error_range),
            );
        }
        figures.push(heatmap_panel(
            &figure_path(&opts.out, "predictions", opts.format),
            opts.format,
            &format!(
                "{} row {row}: each run's prediction and error",
                data.display()
            ),
            loaded.len() + 1,
            &maps,
        )?);
        let rel: Vec<f64> = errors
            .iter()
            .map(|e| {
                let num = e.iter().map(|v| v * v).sum::<f64>().sqrt();
                num / truth.iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .collect();
        sample["relative_l2"] = json!(rel);
    } else {
        sample["panels"] = json!(format!(
            "not drawn: the models are {dims}-D, the panels 2-D"
        ));
    }

    let mut doc = json!({"runs": rows, "sample": sample, "figures": figures});
    let json_path = crate::files::write_report(&opts.out.join("compare.json"), &mut doc)?;
    let mut table = format!(
        "{:<32} {:>10} {:>11} {:>11} {:>11} {:>7} {:>10} {:>10}\n",
        "run", "model", "parameters", "test L2", "test H1", "epochs", "s/epoch", "peak MiB"
    );
    for r in doc["runs"].as_array().expect("rows") {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "{:<32} {:>10} {:>11} {:>11.4e} {:>11.4e} {:>7} {:>10.2} {:>10.0}\n",
            r["run"].as_str().unwrap_or(""),
            r["model"].as_str().unwrap_or(""),
            r["parameters"].as_u64().unwrap_or(0),
            f("final_test_l2"),
            f("final_test_h1"),
            r["epochs"].as_u64().unwrap_or(0),
            f("median_epoch_seconds"),
            f("peak_rss_mib"),
        ));
    }
    Ok(CompareOutcome {
        table,
        json: json_path,
        figures,
    })
}
