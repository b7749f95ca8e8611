//! Model checkpoints as safetensors files: every parameter array (f32, named like
//! `blocks.0.conv.weight`), the optimiser's moments (`optimizer.m.<name>`, `optimizer.v.<name>`),
//! and, as metadata, the model spec, the normalisers, the training state and where the data came
//! from. A checkpoint alone rebuilds the model; with the training state it resumes training.
//!
//! Parameter arrays are stored flat (shape `[len]`): the spec fixes their layout. Files are written
//! to a temporary name and renamed ([`crate::bench::write_bytes_atomic`]), so a crash never leaves a
//! half-written checkpoint.

use crate::data::DataError;
use pdekit_operators::layers::compose::{Embedding, PaddingMode};
use pdekit_operators::layers::factorized::{Factorization, Rank};
use pdekit_operators::layers::Layer;
use pdekit_operators::models::deeponet::DeepOnetSpec;
use pdekit_operators::models::ffno::FfnoSpec;
use pdekit_operators::models::fno::{FnoSpec, GridFrame};
use pdekit_operators::models::{Model, ModelSpec};
use pdekit_operators::train::normalizer::UnitGaussian;
use pdekit_operators::train::optim::{Adam, AdamParams};
use pdekit_operators::train::trainer::{EpochRecord, TrainState};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "pdekit-checkpoint";
pub const FORMAT_VERSION: &str = "1";

/// A loaded checkpoint.
pub struct Loaded {
    pub model: Model<f32>,
    pub x_norm: UnitGaussian,
    pub y_norm: UnitGaussian,
    pub state: TrainState<f32>,
    /// The free-form `data` metadata (dataset path, field names, split).
    pub data: Value,
}

fn factorization_json(f: &Factorization) -> Value {
    let rank = |r: &Rank| match r {
        Rank::Fraction(x) => json!({"rank": x}),
        Rank::Explicit(v) => json!({"ranks": v}),
    };
    match f {
        Factorization::Dense => json!({"kind": "dense"}),
        Factorization::Tucker(r) => {
            let mut v = rank(r);
            v["kind"] = json!("tucker");
            v
        }
        Factorization::Cp(r) => {
            let mut v = rank(r);
            v["kind"] = json!("cp");
            v
        }
    }
}

/// The model spec as checkpoint metadata; `kind` names the model.
pub fn spec_json(spec: &ModelSpec) -> Value {
    let mut v = match spec {
        ModelSpec::Fno(s) => json!({
            "in_channels": s.in_channels,
            "out_channels": s.out_channels,
            "width": s.width,
            "modes": s.modes,
            "layers": s.layers,
            "factorization": factorization_json(&s.factorization),
            "seed": s.seed,
        }),
        ModelSpec::Ffno(s) => json!({
            "in_channels": s.in_channels,
            "out_channels": s.out_channels,
            "width": s.width,
            "modes": s.modes,
            "layers": s.layers,
            "ff_expansion": s.ff_expansion,
            "share_weights": s.share_weights,
            "seed": s.seed,
        }),
        ModelSpec::DeepOnet(s) => json!({
            "in_channels": s.in_channels,
            "out_channels": s.out_channels,
            "sensors": s.sensors,
            "branch": s.branch,
            "trunk": s.trunk,
            "basis": s.basis,
            "seed": s.seed,
        }),
    };
    let frame = match spec {
        ModelSpec::Fno(s) => Some(s.frame),
        ModelSpec::Ffno(s) => Some(s.frame),
        ModelSpec::DeepOnet(_) => None,
    };
    if let Some(f) = frame {
        v["domain_padding"] = json!(f.domain_padding);
        v["domain_padding_mode"] = json!(f.padding_mode.name());
        v["embedding"] = json!(f.embedding.name());
    }
    v["kind"] = json!(spec.kind());
    v
}

/// A named option read from checkpoint metadata. Checkpoints from before the option hold no
/// key, and get `default`: the behaviour they were trained with.
fn named_option<T>(
    model: &Value,
    key: &str,
    from_name: fn(&str) -> Option<T>,
    default: T,
    expected: &str,
) -> Result<T, String> {
    match model.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_str()
            .and_then(from_name)
            .ok_or_else(|| format!("model.{key} is {v}; expected {expected}")),
    }
}

/// Reads [`spec_json`]'s output back; errors name the missing or malformed key.
fn spec_from_json(model: &Value) -> Result<ModelSpec, String> {
    let int = |k: &str| -> Result<usize, String> {
        model[k]
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| format!("model.{k} is missing or not an integer"))
    };
    let ints = |k: &str| -> Result<Vec<usize>, String> {
        model[k]
            .as_array()
            .and_then(|a| a.iter().map(|m| m.as_u64().map(|m| m as usize)).collect())
            .ok_or_else(|| format!("model.{k} is missing or not a list of integers"))
    };
    let frame = GridFrame {
        domain_padding: model["domain_padding"].as_f64().unwrap_or(0.0),
        padding_mode: named_option(
            model,
            "domain_padding_mode",
            PaddingMode::from_name,
            PaddingMode::OneSided,
            "\"one-sided\" or \"symmetric\"",
        )?,
        embedding: named_option(
            model,
            "embedding",
            Embedding::from_name,
            Embedding::Linear,
            "\"linear\" or \"periodic\"",
        )?,
    };
    let seed = model["seed"].as_u64().unwrap_or(0);
    let kind = model["kind"].as_str().unwrap_or("");
    Ok(match kind {
        "fno" | "tfno" => {
            let f = &model["factorization"];
            let rank = || -> Result<Rank, String> {
                match (f["rank"].as_f64(), f["ranks"].as_array()) {
                    (Some(x), _) => Ok(Rank::Fraction(x)),
                    (None, Some(a)) => Ok(Rank::Explicit(
                        a.iter()
                            .filter_map(Value::as_u64)
                            .map(|r| r as usize)
                            .collect(),
                    )),
                    _ => Err("model.factorization has neither rank nor ranks".to_string()),
                }
            };
            let factorization = match f["kind"].as_str() {
                None | Some("dense") => Factorization::Dense,
                Some("tucker") => Factorization::Tucker(rank()?),
                Some("cp") => Factorization::Cp(rank()?),
                Some(other) => return Err(format!("unknown model.factorization.kind `{other}`")),
            };
            ModelSpec::Fno(FnoSpec {
                in_channels: int("in_channels")?,
                out_channels: int("out_channels")?,
                width: int("width")?,
                modes: ints("modes")?,
                layers: int("layers")?,
                frame,
                factorization,
                seed,
            })
        }
        "ffno" => ModelSpec::Ffno(FfnoSpec {
            in_channels: int("in_channels")?,
            out_channels: int("out_channels")?,
            width: int("width")?,
            modes: ints("modes")?,
            layers: int("layers")?,
            ff_expansion: int("ff_expansion")?,
            share_weights: model["share_weights"].as_bool().unwrap_or(false),
            frame,
            seed,
        }),
        "deeponet" => ModelSpec::DeepOnet(DeepOnetSpec {
            in_channels: int("in_channels")?,
            out_channels: int("out_channels")?,
            sensors: ints("sensors")?,
            branch: ints("branch")?,
            trunk: ints("trunk")?,
            basis: int("basis")?,
            seed,
        }),
        other => {
            return Err(format!(
                "unknown model kind `{other}` (this pdekit reads fno, tfno, ffno and deeponet)"
            ))
        }
    })
}

fn norm_json(n: &UnitGaussian) -> Value {
    json!({"mean": n.mean, "std": n.std})
}

fn record_json(r: &EpochRecord) -> Value {
    json!({
        "epoch": r.epoch, "learning_rate": r.learning_rate, "train_loss": r.train_loss,
        "test_l2": r.test_l2, "test_h1": r.test_h1, "seconds": r.seconds,
    })
}

/// The epoch records as JSON (also used by the training report).
pub fn history_json(h: &[EpochRecord]) -> Value {
    Value::Array(h.iter().map(record_json).collect())
}

/// Writes `model` and its training state to `path` (atomically).
pub fn save(
    path: &Path,
    model: &mut Model<f32>,
    norms: (&UnitGaussian, &UnitGaussian),
    state: &TrainState<f32>,
    data: Value,
) -> Result<PathBuf, DataError> {
    let spec = spec_json(&model.spec());
    let mut tensors: Vec<(String, Vec<f32>)> = Vec::new();
    let names: Vec<String> = model.parameters().iter().map(|p| p.name.clone()).collect();
    for p in model.parameters() {
        tensors.push((p.name.clone(), p.value.to_vec()));
    }
    if !state.adam.m.is_empty() {
        for (i, name) in names.iter().enumerate() {
            tensors.push((format!("optimizer.m.{name}"), state.adam.m[i].clone()));
            tensors.push((format!("optimizer.v.{name}"), state.adam.v[i].clone()));
        }
    }
    let p = state.adam.params;
    let meta = json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdekit_version": env!("CARGO_PKG_VERSION"),
        "created": crate::meta::now_utc(),
        "commit": crate::meta::commit(),
        "model": spec,
        "normalizer_x": norm_json(norms.0),
        "normalizer_y": norm_json(norms.1),
        "state": {
            "epoch": state.epoch,
            "learning_rate": state.learning_rate,
            "best_test": state.best_test,
            "since_best": state.since_best,
            "adam": {"step": state.adam.step, "beta1": p.beta1, "beta2": p.beta2, "eps": p.eps,
                     "weight_decay": p.weight_decay, "decoupled": p.decoupled},
            "history": history_json(&state.history),
        },
        "data": data,
    });
    // safetensors metadata is a map of strings.
    let mut metadata = Map::new();
    for (k, v) in meta.as_object().expect("an object") {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        metadata.insert(k.clone(), Value::String(text));
    }
    let mut header = Map::new();
    header.insert("__metadata__".into(), Value::Object(metadata));
    let mut offset = 0usize;
    for (name, values) in &tensors {
        let end = offset + 4 * values.len();
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": [values.len()], "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    for (_, values) in &tensors {
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    crate::bench::write_bytes_atomic(path, &bytes)
}

/// Reads a checkpoint and rebuilds its model, normalisers and training state.
pub fn load(path: &Path) -> Result<Loaded, DataError> {
    let corrupt = |message: String| DataError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if bytes.len() < 8 {
        return Err(corrupt("too short for a safetensors file".into()));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let body = 8usize
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| corrupt(format!("header length {n} runs past the end of the file")))?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..body])
        .map_err(|e| corrupt(format!("the safetensors header is not JSON: {e}")))?;
    let data = &bytes[body..];
    let meta = header
        .get("__metadata__")
        .and_then(Value::as_object)
        .ok_or_else(|| corrupt("no __metadata__: not a pdekit checkpoint".into()))?;
    let text = |k: &str| -> Result<&str, DataError> {
        meta.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt(format!("metadata `{k}` is missing")))
    };
    let parsed = |k: &str| -> Result<Value, DataError> {
        serde_json::from_str(text(k)?).map_err(|e| corrupt(format!("metadata `{k}`: {e}")))
    };
    if text("format")? != FORMAT {
        return Err(corrupt(format!(
            "format is `{}`, expected `{FORMAT}`",
            text("format")?
        )));
    }
    if text("format_version")? != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format_version {} is not supported (this pdekit reads {FORMAT_VERSION})",
            text("format_version")?
        )));
    }
    let model = parsed("model")?;
    let spec = spec_from_json(&model).map_err(corrupt)?;
    let mut net = Model::<f32>::new(spec).map_err(|e| corrupt(format!("model spec: {e}")))?;
    let tensor = |name: &str| -> Result<Vec<f32>, DataError> {
        let entry = header
            .get(name)
            .ok_or_else(|| corrupt(format!("tensor `{name}` is missing")))?;
        if entry["dtype"].as_str() != Some("F32") {
            return Err(corrupt(format!("tensor `{name}` is not F32")));
        }
        let off: Vec<usize> = entry["data_offsets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|x| x as usize)
                    .collect()
            })
            .unwrap_or_default();
        if off.len() != 2
            || off[0] > off[1]
            || off[1] > data.len()
            || !(off[1] - off[0]).is_multiple_of(4)
        {
            return Err(corrupt(format!(
                "tensor `{name}` has bad data offsets {off:?}"
            )));
        }
        Ok(data[off[0]..off[1]]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    };
    let names: Vec<String> = net.parameters().iter().map(|p| p.name.clone()).collect();
    for p in net.parameters() {
        let values = tensor(&p.name)?;
        if values.len() != p.value.len() {
            return Err(corrupt(format!(
                "tensor `{}` has {} values, the model spec needs {}",
                p.name,
                values.len(),
                p.value.len()
            )));
        }
        p.value.copy_from_slice(&values);
    }
    let norm = |k: &str| -> Result<UnitGaussian, DataError> {
        let v = parsed(k)?;
        let list = |f: &str| -> Vec<f64> {
            v[f].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let (mean, std) = (list("mean"), list("std"));
        if mean.is_empty() || mean.len() != std.len() {
            return Err(corrupt(format!("metadata `{k}` is malformed")));
        }
        Ok(UnitGaussian { mean, std })
    };
    let st = parsed("state")?;
    let a = &st["adam"];
    let adam_params = AdamParams {
        beta1: a["beta1"].as_f64().unwrap_or(0.9),
        beta2: a["beta2"].as_f64().unwrap_or(0.999),
        eps: a["eps"].as_f64().unwrap_or(1e-8),
        weight_decay: a["weight_decay"].as_f64().unwrap_or(0.0),
        decoupled: a["decoupled"].as_bool().unwrap_or(false),
    };
    let mut adam = Adam::new(adam_params);
    adam.step = a["step"].as_u64().unwrap_or(0);
    if header.contains_key(&format!("optimizer.m.{}", names[0])) {
        for name in &names {
            adam.m.push(tensor(&format!("optimizer.m.{name}"))?);
            adam.v.push(tensor(&format!("optimizer.v.{name}"))?);
        }
    }
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let history = st["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|r| EpochRecord {
                    epoch: r["epoch"].as_u64().unwrap_or(0) as usize,
                    learning_rate: f(r, "learning_rate"),
                    train_loss: f(r, "train_loss"),
                    test_l2: f(r, "test_l2"),
                    test_h1: f(r, "test_h1"),
                    seconds: f(r, "seconds"),
                })
                .collect()
        })
        .unwrap_or_default();
    let state = TrainState {
        epoch: st["epoch"].as_u64().unwrap_or(0) as usize,
        learning_rate: f(&st, "learning_rate"),
        adam,
        history,
        // JSON has no infinity: a missing best is "none yet".
        best_test: st["best_test"].as_f64().unwrap_or(f64::INFINITY),
        since_best: st["since_best"].as_u64().unwrap_or(0) as usize,
    };
    Ok(Loaded {
        model: net,
        x_norm: norm("normalizer_x")?,
        y_norm: norm("normalizer_y")?,
        state,
        data: parsed("data").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pdekit_operators::tensor::Tensor;
    use pdekit_operators::train::loss::relative_l2;

    fn specs() -> Vec<ModelSpec> {
        let fno = |factorization| {
            ModelSpec::Fno(FnoSpec {
                in_channels: 1,
                out_channels: 1,
                width: 5,
                modes: vec![3, 3],
                layers: 2,
                frame: GridFrame::default(),
                factorization,
                seed: 4,
            })
        };
        vec![
            fno(Factorization::Dense),
            fno(Factorization::Tucker(Rank::Fraction(0.3))),
            fno(Factorization::Cp(Rank::Explicit(vec![4]))),
            ModelSpec::Ffno(FfnoSpec {
                in_channels: 1,
                out_channels: 1,
                width: 4,
                modes: vec![3, 3],
                layers: 3,
                ff_expansion: 2,
                share_weights: true,
                frame: GridFrame {
                    embedding: Embedding::Periodic,
                    domain_padding: 0.2,
                    padding_mode: PaddingMode::Symmetric,
                },
                seed: 2,
            }),
            ModelSpec::DeepOnet(DeepOnetSpec {
                in_channels: 1,
                out_channels: 1,
                sensors: vec![5, 5],
                branch: vec![8],
                trunk: vec![8, 8],
                basis: 6,
                seed: 3,
            }),
        ]
    }

    #[test]
    fn a_checkpoint_rebuilds_every_model_kind_bit_for_bit_with_its_optimizer_state() {
        for spec in specs() {
            round_trip(spec);
        }
    }

    #[test]
    fn embedding_and_padding_mode_default_for_old_checkpoints_and_must_be_known() {
        let periodic = &specs()[3];
        let mut v = spec_json(periodic);
        assert_eq!(v["embedding"], "periodic");
        assert_eq!(v["domain_padding_mode"], "symmetric");
        v.as_object_mut().unwrap().remove("embedding");
        v.as_object_mut().unwrap().remove("domain_padding_mode");
        match spec_from_json(&v).unwrap() {
            ModelSpec::Ffno(s) => {
                assert_eq!(s.frame.embedding, Embedding::Linear);
                assert_eq!(s.frame.padding_mode, PaddingMode::OneSided);
                assert_eq!(s.frame.domain_padding, 0.2);
            }
            other => panic!("{other:?}"),
        }
        v["embedding"] = json!("spiral");
        let err = spec_from_json(&v).unwrap_err();
        assert!(
            err.contains("model.embedding") && err.contains("spiral"),
            "{err}"
        );
        v["embedding"] = json!("linear");
        v["domain_padding_mode"] = json!(3);
        let err = spec_from_json(&v).unwrap_err();
        assert!(err.contains("model.domain_padding_mode is 3"), "{err}");
    }

    fn round_trip(spec: ModelSpec) {
        let kind = spec.kind();
        assert_eq!(spec_from_json(&spec_json(&spec)).unwrap(), spec);
        let mut model = Model::<f32>::new(spec).unwrap();
        let x = Tensor::from_vec(
            &[2, 8, 8, 1],
            (0..128).map(|i| (i as f32 * 0.37).sin()).collect(),
        )
        .unwrap();
        let y = Tensor::from_vec(
            &[2, 8, 8, 1],
            (0..128).map(|i| (i as f32 * 0.11).cos()).collect(),
        )
        .unwrap();
        let params = pdekit_operators::train::trainer::TrainParams::default();
        let mut state = TrainState::new(&params);
        for _ in 0..3 {
            model.zero_grad();
            let p = model.forward(&x).unwrap();
            let (_, g) = relative_l2(&p, &y).unwrap();
            model.backward(&g).unwrap();
            state.adam.update(&mut model.parameters(), 1e-2).unwrap();
        }
        state.epoch = 3;
        let norm = UnitGaussian {
            mean: vec![0.5],
            std: vec![2.0],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        save(
            &path,
            &mut model,
            (&norm, &norm),
            &state,
            json!({"input": "a"}),
        )
        .unwrap();
        let mut loaded = load(&path).unwrap();
        let (a, b) = (
            model.forward(&x).unwrap(),
            loaded.model.forward(&x).unwrap(),
        );
        assert_eq!(a.data, b.data, "{kind}: predictions must be bit-identical");
        assert_eq!(loaded.state.adam, state.adam);
        assert_eq!(loaded.state.epoch, 3);
        assert_eq!(loaded.x_norm, norm);
        assert_eq!(loaded.data["input"], "a");
        assert!(!dir.path().join("c.partial").exists());
    }
}
