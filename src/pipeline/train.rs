//! The `train` stage: a neural operator (FNO, TFNO, F-FNO or DeepONet) trained on a pdekit (or
//! neuraloperator / PDEBench) dataset, and `pdekit evaluate`, which rebuilds a model from its
//! checkpoint alone and scores it on any dataset, at any resolution.
//!
//! Writes to `output_dir`: `checkpoint.safetensors` (after every epoch, atomically; a rerun resumes
//! from it), `training_report.json`, `loss.png` (train loss and test errors against epoch, log
//! scale) and `predictions.png` (input, truth, prediction and |error| for a few test samples,
//! 2-D data).

use crate::checkpoint;
use crate::config::train::{Learner, NeuralPlan, TrainRun};
use crate::config::TrainPlan;
use crate::data::{DataError, Dataset};
use crate::plot::training::Prediction;
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Array2;
use pdekit_operators::layers::Layer;
use pdekit_operators::models::{Io, Model, ModelSpec};
use pdekit_operators::tensor::{NnError, Tensor};
use pdekit_operators::train::normalizer::UnitGaussian;
use pdekit_operators::train::trainer::{
    gather_rows, predict, train, BatchRecord, Control, EpochRecord, Split, TrainState,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct TrainOutcome {
    pub epochs: usize,
    pub final_test_l2: f64,
    pub checkpoint: PathBuf,
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// The dataset field called `name`, or the first `inputs/…` / `outputs/…` field when empty; a
/// bare name is looked up under `group/`.
pub(super) fn resolve(ds: &Dataset, name: &str, group: &str) -> Result<String, PdekitError> {
    let names: Vec<&str> = ds.fields().iter().map(|f| f.name.as_str()).collect();
    let found = if name.is_empty() {
        names
            .iter()
            .find(|n| n.starts_with(&format!("{group}/")))
            .copied()
    } else {
        names
            .iter()
            .find(|n| **n == name || **n == format!("{group}/{name}"))
            .copied()
    };
    found.map(str::to_string).ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: no {group} field {}; it has: {}",
            ds.path().display(),
            if name.is_empty() {
                "at all".into()
            } else {
                format!("`{name}`")
            },
            names.join(", ")
        ))
    })
}

/// Samples `rows` of a field as an f32 tensor `[n, grid…, channels]` for a model on `dims` grid
/// axes: a field with `dims` axes per sample is one channel; one with `dims + 1` axes (e.g.
/// snapshots `[T, n, n]`) has its first axis as the channels.
pub(super) fn read_tensor(
    ds: &Dataset,
    name: &str,
    rows: std::ops::Range<usize>,
    dims: usize,
) -> Result<Tensor<f32>, PdekitError> {
    let a = ds.read(name, rows.clone())?;
    let shape = a.shape().to_vec();
    let per = a.len() / shape[0].max(1);
    // The models compute in f32.
    if let Some(at) = a
        .iter()
        .position(|v| !v.is_finite() || v.abs() > f32::MAX as f64)
    {
        return Err(DataError::Corrupt {
            path: ds.path().to_path_buf(),
            message: format!(
                "field `{name}`, sample {}, holds {:e}; a model needs finite values within f32 range, so leave that sample out of the rows used or regenerate it",
                rows.start + at / per.max(1),
                a.iter().nth(at).copied().unwrap_or(f64::NAN)
            ),
        }
        .into());
    }
    let data: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    let (n, per_sample) = (shape[0], &shape[1..]);
    let tensor = if per_sample.len() == dims {
        let mut s = shape.clone();
        s.push(1);
        Tensor::from_vec(&s, data)
    } else if per_sample.len() == dims + 1 {
        let c = per_sample[0];
        let moved = channels_last(&data, n, c);
        let mut s = vec![n];
        s.extend(&per_sample[1..]);
        s.push(c);
        Tensor::from_vec(&s, moved)
    } else {
        return Err(PdekitError::Usage(format!(
            "{}: field `{name}` has samples of shape {per_sample:?}; the model works on {dims} grid axes (a field of {dims} axes, or {} with channels first)",
            ds.path().display(),
            dims + 1
        )));
    };
    tensor.map_err(|e| PdekitError::Usage(e.to_string()))
}

/// Refuses target samples that are zero everywhere: a relative error divides by their norm.
/// `rows_start` is the first sample's row in the file, for the message.
pub(super) fn nonzero_targets(
    ds: &Dataset,
    name: &str,
    t: &Tensor<f32>,
    rows_start: usize,
) -> Result<(), PdekitError> {
    let per = t.data.len() / t.shape[0].max(1);
    match t.data.chunks(per.max(1)).position(|s| s.iter().all(|&v| v == 0.0)) {
        None => Ok(()),
        Some(b) => Err(DataError::Corrupt {
            path: ds.path().to_path_buf(),
            message: format!(
                "field `{name}`, sample {}, is zero everywhere; the relative errors that train and score a model divide by a target's norm, so leave that sample out of the rows used",
                rows_start + b
            ),
        }
        .into()),
    }
}

/// What a checkpoint records of the data it was fitted on: files, fields, split, and the SHA-256
/// of the values (`[x, y, test x, test y]`), so a resume notices changed data. Options appear
/// only when used, so checkpoints from before them still resume.
pub(super) fn split_meta(
    run: &TrainRun,
    input: &str,
    output: &str,
    split: [&Tensor<f32>; 4],
) -> serde_json::Value {
    let mut meta = json!({
        "path": run.data, "input": input, "output": output,
        "train_samples": run.train_samples, "test_samples": run.test_samples,
    });
    if run.subsample > 1 {
        meta["subsample"] = json!(run.subsample);
    }
    if let Some(t) = &run.test_data {
        meta["test_data"] = json!(t);
        meta["test_start"] = json!(run.test_start);
    }
    meta["sha256"] = json!(digest(&split));
    meta
}

/// SHA-256 of the values a run trains and tests on, so a resume notices changed data.
fn digest(tensors: &[&Tensor<f32>]) -> String {
    checkpoint::sha256_hex(
        tensors
            .iter()
            .flat_map(|t| t.data.iter().map(|v| v.to_le_bytes())),
    )
}

/// Why the data a checkpoint was trained on (`stored`) is not the data of this run (`now`), or
/// `None` when it is. Paths are compared as files (`a/../d.h5` is `d.h5`); the content digest only
/// when the checkpoint has one (it was added later).
pub(super) fn same_data(stored: &serde_json::Value, now: &serde_json::Value) -> Option<String> {
    let (Some(a), Some(b)) = (stored.as_object(), now.as_object()) else {
        return Some("no data record in the checkpoint".into());
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        let same = match key.as_str() {
            "sha256" => x.is_none() || x == y,
            "path" => {
                let file = |v: Option<&serde_json::Value>| {
                    v.and_then(|v| v.as_str())
                        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
                };
                file(x) == file(y)
            }
            _ => x == y,
        };
        if !same {
            let show = |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
            return Some(if key == "sha256" {
                "the data's values changed since".into()
            } else {
                format!("{key} was {}, now {}", show(x), show(y))
            });
        }
    }
    None
}

/// `[n][c][points]` → `[n][points][c]`.
fn channels_last(data: &[f32], n: usize, c: usize) -> Vec<f32> {
    let points = data.len() / (n * c).max(1);
    let mut moved = vec![0f32; data.len()];
    for b in 0..n {
        for ch in 0..c {
            for p in 0..points {
                moved[(b * points + p) * c + ch] = data[(b * c + ch) * points + p];
            }
        }
    }
    moved
}

/// Grid axes of an input/output pair: the smaller of the two fields' per-sample axis counts (the
/// other may have one more, a leading channel axis). It must be `model_dims`, the dimension of
/// `model` (named in the error).
pub(super) fn data_dims(
    ds: &Dataset,
    input: &str,
    output: &str,
    model_dims: usize,
    model: &str,
) -> Result<usize, PdekitError> {
    let dims = field_dims(ds, input, output)?;
    if dims != model_dims {
        return Err(PdekitError::Usage(format!(
            "{}: {model} is for {model_dims}-D data, but `{input}` and `{output}` are {dims}-D (one mode or sensor count per grid axis)",
            ds.path().display()
        )));
    }
    Ok(dims)
}

/// Grid axes of an input/output pair (see [`data_dims`]).
pub(super) fn field_dims(ds: &Dataset, input: &str, output: &str) -> Result<usize, PdekitError> {
    // A time series knows its grid, so both fields may carry channels.
    if let Some(steps) = &ds.field(input)?.steps {
        if !steps.grid.is_empty() {
            return Ok(steps.grid.len());
        }
    }
    let (a, b) = (
        ds.field(input)?.shape.len() - 1,
        ds.field(output)?.shape.len() - 1,
    );
    if a.abs_diff(b) > 1 || a.min(b) == 0 {
        return Err(PdekitError::Usage(format!(
            "{}: `{input}` has {a} axes per sample and `{output}` {b}; expected fields on one grid, one of them optionally with a leading channel axis",
            ds.path().display()
        )));
    }
    Ok(a.min(b))
}

/// The training and test samples of a `[train]` run, read and checked.
pub(crate) struct TrainData {
    pub input: String,
    pub output: String,
    /// Grid axes of the samples.
    pub dims: usize,
    pub x: Tensor<f32>,
    pub y: Tensor<f32>,
    pub tx: Tensor<f32>,
    pub ty: Tensor<f32>,
}

/// Reads the split `run` names for the model of table `key`, which works on `model_dims` grid
/// axes (`None`: any).
pub(crate) fn read_split(
    run: &TrainRun,
    config: &Path,
    key: &str,
    model_dims: Option<usize>,
) -> Result<TrainData, PdekitError> {
    let ds = Dataset::open(&run.data)?;
    let input = resolve(&ds, &run.input, "inputs")?;
    let output = resolve(&ds, &run.output, "outputs")?;
    let (n_train, n_test) = (run.train_samples, run.test_samples);
    // The test rows: after the training ones, or in a separate file.
    let test_ds = match &run.test_data {
        None => None,
        Some(path) => Some(Dataset::open(path)?),
    };
    let test_start = match &test_ds {
        None => n_train,
        Some(_) => run.test_start,
    };
    let needs = |file: &Dataset, rows: usize, what: &str| {
        if rows > file.len() {
            return Err(PdekitError::Usage(format!(
                "{}: {what} = {rows} but {} holds {} samples",
                config.display(),
                file.path().display(),
                file.len()
            )));
        }
        Ok(())
    };
    match &test_ds {
        None => needs(
            &ds,
            n_train + n_test,
            "train.train_samples + train.test_samples",
        )?,
        Some(t) => {
            needs(&ds, n_train, "train.train_samples")?;
            needs(
                t,
                test_start + n_test,
                "train.test_start + train.test_samples",
            )?;
        }
    }
    let what = format!("{key} ({})", config.display());
    let dims = match model_dims {
        Some(d) => data_dims(&ds, &input, &output, d, &what)?,
        None => data_dims(
            &ds,
            &input,
            &output,
            field_dims(&ds, &input, &output)?,
            &what,
        )?,
    };
    let read = |file: &Dataset, name: &str, rows| {
        read_tensor(file, name, rows, dims).map(|t| t.subsample(run.subsample))
    };
    let x = read(&ds, &input, 0..n_train)?;
    let y = read(&ds, &output, 0..n_train)?;
    let tfile = test_ds.as_ref().unwrap_or(&ds);
    // The test file's fields go by the training file's names.
    let short = |name: &str| name.split_once('/').map_or(name, |(_, n)| n).to_string();
    let (tin, tout) = match &test_ds {
        None => (input.clone(), output.clone()),
        Some(t) => (
            resolve(t, &short(&input), "inputs")?,
            resolve(t, &short(&output), "outputs")?,
        ),
    };
    let rows = test_start..test_start + n_test;
    let tx = read(tfile, &tin, rows.clone())?;
    let ty = read(tfile, &tout, rows)?;
    nonzero_targets(&ds, &output, &y, 0)?;
    nonzero_targets(tfile, &tout, &ty, test_start)?;
    if y.grid() != x.grid() {
        return Err(PdekitError::Usage(format!(
            "{}: `{input}` has grid {:?} but `{output}` has grid {:?}; {} maps fields on one grid",
            config.display(),
            x.grid(),
            y.grid(),
            key
        )));
    }
    if tx.grid() != x.grid()
        || ty.grid() != y.grid()
        || tx.channels() != x.channels()
        || ty.channels() != y.channels()
    {
        return Err(PdekitError::Usage(format!(
            "{}: the test samples of {} have grid {:?} with {} input and {} output channels, the training samples of {} grid {:?} with {} and {}; train and test must match",
            config.display(),
            tfile.path().display(),
            tx.grid(),
            tx.channels(),
            ty.channels(),
            ds.path().display(),
            x.grid(),
            x.channels(),
            y.channels()
        )));
    }
    Ok(TrainData {
        input,
        output,
        dims,
        x,
        y,
        tx,
        ty,
    })
}

/// One sample through the model, so an architecture that does not fit the data's grid (more modes
/// than it holds, an MG-TFNO grid not divisible by `2^levels`) fails before training, naming its
/// key, rather than inside epoch 0.
fn fits_grid(
    model: &mut Model<f32>,
    sample: &Tensor<f32>,
    key: &str,
    config: &Path,
    subsample: usize,
) -> Result<(), PdekitError> {
    let Err(e) = model.forward(sample) else {
        return Ok(());
    };
    let key = match &e {
        NnError::Shape {
            layer: "spectral conv" | "per-axis spectral conv",
            ..
        } => format!("{key}.modes"),
        NnError::BadSpec {
            layer: "multigrid patching",
            ..
        } => format!("{key}.levels"),
        _ => key.to_string(),
    };
    Err(PdekitError::Usage(format!(
        "{}: key `{key}`: {e} (the data's grid is {:?}{})",
        config.display(),
        sample.grid(),
        if subsample > 1 {
            format!(", after train.subsample = {subsample}")
        } else {
            String::new()
        }
    )))
}

/// What `run --dry-run` checks of a neural operator's `[train]` against its data, when the data
/// file is already there: the model fits the data's grid and channels (see [`fits_grid`]).
pub fn preflight(plan: &TrainPlan, config: &Path) -> Result<(), PdekitError> {
    let (Learner::Neural(neural), true) = (&plan.learner, plan.run.data.exists()) else {
        return Ok(());
    };
    let run = &plan.run;
    let key = plan.model_key();
    let model_error = |e| PdekitError::Usage(format!("{}: {key}: {e}", config.display()));
    let io = |in_channels, out_channels| Io {
        in_channels,
        out_channels,
        seed: neural.params.seed,
    };
    let model_dims = neural.model.spec(io(1, 1)).map_err(model_error)?.dims();
    let ds = Dataset::open(&run.data)?;
    let input = resolve(&ds, &run.input, "inputs")?;
    let output = resolve(&ds, &run.output, "outputs")?;
    let what = format!("{key} ({})", config.display());
    let dims = data_dims(&ds, &input, &output, model_dims, &what)?;
    let read = |name: &str| read_tensor(&ds, name, 0..1, dims).map(|t| t.subsample(run.subsample));
    let (x, y) = (read(&input)?, read(&output)?);
    let spec = model_spec(neural, &x, &y, &key, config)?;
    let mut model = Model::<f32>::new(spec).map_err(model_error)?;
    fits_grid(&mut model, &x, &key, config, run.subsample)
}

/// The model of table `key` for data with the channels of `x` and `y`, checked to fit in memory.
fn model_spec(
    neural: &NeuralPlan,
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    key: &str,
    config: &Path,
) -> Result<ModelSpec, PdekitError> {
    let usage = |e: String| PdekitError::Usage(format!("{}: {key}: {e}", config.display()));
    let spec = neural
        .model
        .spec(Io {
            in_channels: x.channels(),
            out_channels: y.channels(),
            seed: neural.params.seed,
        })
        .map_err(|e| usage(e.to_string()))?;
    crate::meta::model_fits_in_memory(&spec).map_err(usage)?;
    Ok(spec)
}

pub fn run(
    plan: &TrainPlan,
    config: &Path,
    rep: Reporter,
    force: bool,
    interrupted: &AtomicBool,
) -> Result<TrainOutcome, PdekitError> {
    let neural = match &plan.learner {
        Learner::Neural(n) => n,
        Learner::Gp(gp) => {
            return super::gp_operator::fit(&plan.run, gp, config, rep, force, interrupted)
        }
    };
    let run = &plan.run;
    let n_test = run.test_samples;
    let key = plan.model_key();
    let seed = neural.params.seed;
    let io = |in_channels, out_channels| Io {
        in_channels,
        out_channels,
        seed,
    };
    let model_error = |e| PdekitError::Usage(format!("{}: {key}: {e}", config.display()));
    let model_dims = neural.model.spec(io(1, 1)).map_err(model_error)?.dims();
    let TrainData {
        input,
        output,
        dims,
        x,
        y,
        tx,
        ty,
    } = read_split(run, config, &key, Some(model_dims))?;
    let params = &neural.params;
    let ckpt_path = run.output_dir.join("checkpoint.safetensors");
    let _lock = crate::files::WriteLock::acquire(&ckpt_path)?;
    let spec = model_spec(neural, &x, &y, &key, config)?;
    let data_meta = split_meta(run, &input, &output, [&x, &y, &tx, &ty]);
    let (mut model, x_norm, y_norm, state) = if ckpt_path.exists() && !force {
        let loaded = checkpoint::load(&ckpt_path)?;
        if loaded.model.spec() != spec {
            return Err(PdekitError::Usage(format!(
                "{}: holds a model of another spec; rerun with --force to start again",
                ckpt_path.display()
            )));
        }
        if let Some(why) = same_data(&loaded.data, &data_meta) {
            return Err(PdekitError::Usage(format!(
                "{}: was trained on other data ({why}); rerun with --force to start again",
                ckpt_path.display()
            )));
        }
        rep.info(format!(
            "resuming from {} after epoch {}{}",
            ckpt_path.display(),
            loaded.state.epoch,
            loaded
                .state
                .partial
                .as_ref()
                .map_or(String::new(), |p| format!(
                    " and batch {} of epoch {}",
                    p.batches,
                    loaded.state.epoch + 1
                ))
        ));
        (loaded.model, loaded.x_norm, loaded.y_norm, loaded.state)
    } else {
        let model = Model::<f32>::new(spec).map_err(model_error)?;
        (
            model,
            UnitGaussian::fit(&x),
            UnitGaussian::fit(&y),
            TrainState::new(params),
        )
    };
    fits_grid(
        &mut model,
        &x_norm.encode(&gather_rows(&x, &[0])),
        &key,
        config,
        run.subsample,
    )?;
    let bar = rep.bar(params.epochs as u64, "train", "epochs");
    bar.set_position(state.epoch as u64);
    let mut save_error = None;
    // A checkpoint this run can stand on: the one it resumed from, then each one it writes.
    let mut last_good = (state.epoch > 0).then(|| ckpt_path.clone());
    // The previous epoch's test error, shown beside the running loss while an epoch runs.
    let last_test = std::cell::Cell::new(state.history.last().map(|r| r.test_l2));
    let mut peak_is_epochs = crate::meta::reset_peak_rss();
    let events = LiveMetrics::open(run.tensorboard, &run.output_dir, &rep)?;
    // The epoch the batches belong to (the observer moves it on).
    let epoch_now = std::cell::Cell::new(state.epoch);
    let result = train(
        &mut model,
        (&x_norm, &y_norm),
        (&Split { x: &x, y: &y }, &Split { x: &tx, y: &ty }),
        params,
        state,
        &mut |b| {
            bar.set_message(format!(
                "batch {}, running loss {:.3e}{}",
                b.batch + 1,
                b.running_loss,
                last_test
                    .get()
                    .map_or(String::new(), |t| format!(", last test L2 {t:.3e}"))
            ));
            events.batch(b, epoch_now.get());
            if interrupted.load(Ordering::SeqCst) {
                Control::Stop
            } else {
                Control::Continue
            }
        },
        |record, model, state| {
            // The epoch's peak memory; the high-water mark then starts again for the next one.
            if let Some(r) = state.history.last_mut() {
                r.peak_rss_mib = crate::meta::peak_rss_mib().filter(|_| peak_is_epochs);
            }
            peak_is_epochs = crate::meta::reset_peak_rss();
            events.epoch(record, state.history.last().and_then(|r| r.peak_rss_mib));
            epoch_now.set(record.epoch + 1);
            last_test.set(Some(record.test_l2));
            bar.set_message(format!(
                "loss {:.3e}, test L2 {:.3e}",
                record.train_loss, record.test_l2
            ));
            bar.inc(1);
            match checkpoint::save(
                &ckpt_path,
                model,
                (&x_norm, &y_norm),
                state,
                data_meta.clone(),
            ) {
                Ok(path) => {
                    last_good = Some(path);
                    if interrupted.load(Ordering::SeqCst) {
                        Control::Stop
                    } else {
                        Control::Continue
                    }
                }
                Err(e) => {
                    save_error = Some(e);
                    Control::Stop
                }
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = save_error {
        return Err(e.into());
    }
    let state = result.map_err(|source| PdekitError::Train {
        config: config.to_path_buf(),
        source: Box::new(source),
        checkpoint: last_good,
    })?;
    if let Some(partial) = &state.partial {
        let path = checkpoint::save(
            &ckpt_path,
            &mut model,
            (&x_norm, &y_norm),
            &state,
            data_meta,
        )?;
        return Err(PdekitError::TrainingInterrupted {
            epoch: state.epoch,
            batch: Some(partial.batches),
            checkpoint: path,
        });
    }
    if state.epoch < params.epochs && interrupted.load(Ordering::SeqCst) {
        return Err(PdekitError::TrainingInterrupted {
            epoch: state.epoch,
            batch: None,
            checkpoint: ckpt_path,
        });
    }
    let last = state.history.last().cloned();
    let mut doc = json!({
        "config": config,
        "threads": rayon::current_num_threads(),
        "plan": plan,
        "model": model.spec(),
        "parameters": model.parameter_count(),
        "epochs_done": state.epoch,
        "final": last.as_ref().map(|r| json!({"test_l2": r.test_l2, "test_h1": r.test_h1, "train_loss": r.train_loss})),
        "mean_epoch_seconds": if state.history.is_empty() { 0.0 } else {
            state.history.iter().map(|r| r.seconds).sum::<f64>() / state.history.len() as f64
        },
        // Each epoch restarts the high-water mark, so the run's peak is the largest of theirs.
        "peak_rss_mib": state.history.iter().filter_map(|r| r.peak_rss_mib)
            .chain(crate::meta::peak_rss_mib()).reduce(f64::max),
        "history": state.history,
        "checkpoint": ckpt_path,
    });
    let report =
        crate::files::write_report(&run.output_dir.join("training_report.json"), &mut doc)?;
    let mut figures = vec![crate::plot::training::curves(
        &run.output_dir,
        run.format,
        &format!("{:?}", params.loss),
        &state.history,
    )?];
    if dims == 2 && run.panels > 0 {
        let k = run.panels.min(n_test);
        let idx: Vec<usize> = (0..k).collect();
        let xs = gather_rows(&tx, &idx);
        let pred =
            predict(&mut model, (&x_norm, &y_norm), &xs, params.batch_size).map_err(|source| {
                PdekitError::Model {
                    what: format!("{}: the prediction panels", config.display()),
                    source,
                }
            })?;
        let (s0, s1) = (x.grid()[0], x.grid()[1]);
        // Input channel 0 and the last output channel (the final snapshot of a trajectory).
        let field = |t: &Tensor<f32>, b: usize, c: usize| {
            let ch = t.channels();
            Array2::from_shape_fn((s0, s1), |(i, j)| {
                t.data[((b * s0 + i) * s1 + j) * ch + c] as f64
            })
        };
        let last_ch = ty.channels() - 1;
        let samples: Vec<Prediction> = (0..k)
            .map(|b| Prediction {
                input: field(&xs, b, 0),
                truth: field(&ty, b, last_ch),
                prediction: field(&pred, b, last_ch),
                std: None,
            })
            .collect();
        figures.push(crate::plot::training::predictions(
            &run.output_dir,
            run.format,
            &samples,
        )?);
    }
    rep.info(format!(
        "trained the {} ({} parameters) for {} epochs: final test relative L2 {:.4e}, H1 {:.4e}{}\nwrote {}, {} and {} figures in {}",
        model.spec().name(),
        model.parameter_count(),
        state.epoch,
        last.as_ref().map_or(f64::NAN, |r| r.test_l2),
        last.as_ref().map_or(f64::NAN, |r| r.test_h1),
        doc["peak_rss_mib"]
            .as_f64()
            .map_or(String::new(), |m| format!("; peak memory {m:.0} MiB")),
        ckpt_path.display(),
        report.display(),
        figures.len(),
        run.output_dir.display()
    ));
    Ok(TrainOutcome {
        epochs: state.epoch,
        final_test_l2: last.map_or(f64::NAN, |r| r.test_l2),
        checkpoint: ckpt_path,
        report,
        figures,
    })
}

/// TensorBoard scalars of a training run (`[train] tensorboard = true`), or nothing. A write that
/// fails stops the logging with one warning; training goes on.
struct LiveMetrics<'a> {
    log: std::cell::RefCell<Option<crate::tensorboard::EventLog>>,
    rep: &'a Reporter,
    /// When the previous batch ended (or the logging began), for each batch's wall time.
    last: std::cell::Cell<std::time::Instant>,
}

impl<'a> LiveMetrics<'a> {
    fn open(enabled: bool, dir: &Path, rep: &'a Reporter) -> Result<Self, PdekitError> {
        let log = if enabled {
            let log = crate::tensorboard::EventLog::create(dir)?;
            rep.info(format!(
                "TensorBoard: {} (tensorboard --logdir {})",
                log.path().display(),
                dir.parent().unwrap_or(dir).display()
            ));
            Some(log)
        } else {
            None
        };
        Ok(Self {
            log: std::cell::RefCell::new(log),
            rep,
            last: std::cell::Cell::new(std::time::Instant::now()),
        })
    }

    fn write(&self, step: i64, values: &[(&str, f64)]) {
        let mut log = self.log.borrow_mut();
        if let Some(l) = log.as_mut() {
            if let Err(e) = l.scalars(step, values) {
                self.rep.warn(format!(
                    "{e}; TensorBoard logging stopped, training goes on"
                ));
                *log = None;
            }
        }
    }

    /// Batch scalars at the global batch count (epochs before this one × batches + this one).
    fn batch(&self, b: &BatchRecord, epoch: usize) {
        let seconds = self.last.get().elapsed().as_secs_f64();
        self.last.set(std::time::Instant::now());
        if self.log.borrow().is_none() {
            return;
        }
        let step = (epoch * b.batches + b.batch + 1) as i64;
        let mut values = vec![
            ("batch/loss", b.loss),
            ("batch/running_loss", b.running_loss),
            ("batch/learning_rate", b.learning_rate),
            ("batch/seconds", seconds),
        ];
        if let Some(m) = crate::meta::rss_mib() {
            values.push(("batch/rss_mib", m));
        }
        self.write(step, &values);
    }

    /// Epoch scalars at the number of epochs completed.
    fn epoch(&self, r: &EpochRecord, peak_rss_mib: Option<f64>) {
        let mut values = vec![
            ("epoch/train_loss", r.train_loss),
            ("epoch/test_l2", r.test_l2),
            ("epoch/test_h1", r.test_h1),
            ("epoch/learning_rate", r.learning_rate),
            ("epoch/seconds", r.seconds),
        ];
        if let Some(m) = peak_rss_mib {
            values.push(("epoch/peak_rss_mib", m));
        }
        self.write((r.epoch + 1) as i64, &values);
        // The test pass is not a batch: the next batch's time starts here.
        self.last.set(std::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::channels_last;

    #[test]
    fn a_leading_axis_moves_to_the_channels() {
        // Two samples, three snapshots of two points: value = 100·b + 10·t + p.
        let data: Vec<f32> = (0..2)
            .flat_map(|b| {
                (0..3).flat_map(move |t| (0..2).map(move |p| (100 * b + 10 * t + p) as f32))
            })
            .collect();
        let moved = channels_last(&data, 2, 3);
        assert_eq!(
            moved,
            vec![0., 10., 20., 1., 11., 21., 100., 110., 120., 101., 111., 121.]
        );
    }
}
