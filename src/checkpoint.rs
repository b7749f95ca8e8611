//! Model checkpoints as safetensors files: every parameter array (f32, named like
//! `blocks.0.conv.weight`), the optimiser's moments (`optimizer.m.<name>`, `optimizer.v.<name>`),
//! and, as metadata, the model spec, the normalisers, the training state and where the data came
//! from. A checkpoint alone rebuilds the model; with the training state it resumes training.
//!
//! The metadata is the serde form of the operator library's types ([`ModelSpec`],
//! [`UnitGaussian`], [`AdamParams`], [`EpochRecord`]); format version 1 (before that) reads the
//! same way. Parameter arrays are stored flat (shape `[len]`): the spec fixes their layout. Files
//! are written to a temporary name and renamed ([`crate::files::write_bytes_atomic`]), so a crash
//! never leaves a half-written checkpoint.

use crate::data::DataError;
use pdekit_operators::layers::Layer;
use pdekit_operators::models::{Model, ModelSpec};
use pdekit_operators::train::normalizer::UnitGaussian;
use pdekit_operators::train::optim::{Adam, AdamParams};
use pdekit_operators::train::trainer::{EpochRecord, PartialEpoch, TrainState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "pdekit-checkpoint";
/// 2: metadata derived from the library's serde forms (version 1, hand-written, reads alike).
pub const FORMAT_VERSION: &str = "2";
const READS: [&str; 2] = ["1", FORMAT_VERSION];

/// A loaded checkpoint.
pub struct Loaded {
    pub model: Model<f32>,
    pub x_norm: UnitGaussian,
    pub y_norm: UnitGaussian,
    pub state: TrainState<f32>,
    /// The free-form `data` metadata (dataset path, field names, split).
    pub data: Value,
}

/// The optimiser's step count and settings (its moments are tensors).
#[derive(Serialize, Deserialize)]
struct AdamMeta {
    step: u64,
    #[serde(flatten)]
    params: AdamParams,
}

/// The training state besides the weights and moments.
#[derive(Serialize, Deserialize)]
struct StateMeta {
    epoch: usize,
    learning_rate: f64,
    /// JSON has no infinity: `null` is "no test error yet".
    best_test: Option<f64>,
    since_best: usize,
    adam: AdamMeta,
    history: Vec<EpochRecord>,
    /// Present when training was interrupted inside epoch `epoch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partial: Option<PartialEpoch>,
}

/// Writes `model` and its training state to `path` (atomically).
pub fn save(
    path: &Path,
    model: &mut Model<f32>,
    norms: (&UnitGaussian, &UnitGaussian),
    state: &TrainState<f32>,
    data: Value,
) -> Result<PathBuf, DataError> {
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
    let meta = json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdekit_version": env!("CARGO_PKG_VERSION"),
        "created": crate::meta::now_utc(),
        "commit": crate::meta::commit(),
        "model": model.spec(),
        "normalizer_x": norms.0,
        "normalizer_y": norms.1,
        "state": StateMeta {
            epoch: state.epoch,
            learning_rate: state.learning_rate,
            best_test: state.best_test.is_finite().then_some(state.best_test),
            since_best: state.since_best,
            adam: AdamMeta {
                step: state.adam.step,
                params: state.adam.params,
            },
            history: state.history.clone(),
            partial: state.partial.clone(),
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
    let mut payload = Vec::with_capacity(4 * tensors.iter().map(|(_, v)| v.len()).sum::<usize>());
    for (_, values) in &tensors {
        for v in values {
            payload.extend_from_slice(&v.to_le_bytes());
        }
    }
    metadata.insert(
        CHECKSUM.into(),
        Value::String(sha256_hex([payload.as_slice()])),
    );
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
    bytes.extend_from_slice(&payload);
    crate::files::write_bytes_atomic(path, &bytes)
}

/// The metadata key of the SHA-256 of the tensor bytes (absent in files before it was added).
const CHECKSUM: &str = "tensors_sha256";

/// The SHA-256 of `parts` read one after the other, in hex.
pub(crate) fn sha256_hex<P: AsRef<[u8]>>(parts: impl IntoIterator<Item = P>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_ref());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
    if text("format")? != FORMAT {
        return Err(corrupt(format!(
            "format is `{}`, expected `{FORMAT}`",
            text("format")?
        )));
    }
    if let Some(sum) = meta.get(CHECKSUM).and_then(Value::as_str) {
        if sha256_hex([data]) != sum {
            return Err(corrupt(
                "the tensor bytes do not match their SHA-256 checksum: the file was damaged or altered after it was written".into(),
            ));
        }
    }
    let version = text("format_version")?;
    if !READS.contains(&version) {
        return Err(corrupt(format!(
            "format_version {version} is not supported (this pdekit reads {})",
            READS.join(" and ")
        )));
    }
    let read = |k: &str| -> Result<Value, DataError> {
        serde_json::from_str(text(k)?).map_err(|e| corrupt(format!("metadata `{k}`: {e}")))
    };
    let spec: ModelSpec = serde_json::from_value(read("model")?)
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
    spec.validate()
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
    crate::meta::model_fits_in_memory(&spec)
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
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
        let n: UnitGaussian = serde_json::from_value(read(k)?)
            .map_err(|e| corrupt(format!("metadata `{k}`: {e}")))?;
        if n.mean.is_empty() || n.mean.len() != n.std.len() {
            return Err(corrupt(format!(
                "metadata `{k}` has {} means and {} standard deviations",
                n.mean.len(),
                n.std.len()
            )));
        }
        Ok(n)
    };
    let st: StateMeta = serde_json::from_value(read("state")?)
        .map_err(|e| corrupt(format!("metadata `state`: {e}")))?;
    let mut adam = Adam::new(st.adam.params);
    adam.step = st.adam.step;
    if header.contains_key(&format!("optimizer.m.{}", names[0])) {
        for name in &names {
            adam.m.push(tensor(&format!("optimizer.m.{name}"))?);
            adam.v.push(tensor(&format!("optimizer.v.{name}"))?);
        }
    }
    let state = TrainState {
        epoch: st.epoch,
        learning_rate: st.learning_rate,
        adam,
        history: st.history,
        best_test: st.best_test.unwrap_or(f64::INFINITY),
        since_best: st.since_best,
        partial: st.partial,
    };
    Ok(Loaded {
        model: net,
        x_norm: norm("normalizer_x")?,
        y_norm: norm("normalizer_y")?,
        state,
        data: read("data").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pdekit_operators::layers::compose::{Embedding, PaddingMode};
    use pdekit_operators::layers::factorized::{Factorization, Rank};
    use pdekit_operators::models::deeponet::{DeepOnetSection, DeepOnetSpec};
    use pdekit_operators::models::ffno::FfnoSpec;
    use pdekit_operators::models::fno::{FnoSpec, GridFrame};
    use pdekit_operators::tensor::Tensor;
    use pdekit_operators::train::loss::relative_l2;

    fn specs() -> Vec<ModelSpec> {
        let fno = |factorization| FnoSpec {
            in_channels: 1,
            out_channels: 1,
            width: 5,
            modes: vec![3, 3],
            layers: 2,
            frame: GridFrame::default(),
            factorization,
            seed: 4,
        };
        vec![
            ModelSpec::Fno(fno(Factorization::Dense)),
            ModelSpec::Tfno(fno(Factorization::Tucker(Rank::Fraction(0.3)))),
            ModelSpec::Tfno(fno(Factorization::Cp(Rank::Explicit(vec![4])))),
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
                section: DeepOnetSection {
                    sensors: vec![5, 5],
                    branch: vec![8],
                    trunk: vec![8, 8],
                    basis: 6,
                },
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
    fn specs_read_the_version_1_layout_and_unknown_names_are_errors() {
        let v1 = json!({
            "kind": "tfno", "in_channels": 1, "out_channels": 1, "width": 5, "modes": [3, 3],
            "layers": 2, "factorization": {"kind": "tucker", "rank": 0.3}, "seed": 4,
            "domain_padding": 0.0,
        });
        let spec: ModelSpec = serde_json::from_value(v1).unwrap();
        assert_eq!(spec, specs()[1]);
        // Written before embeddings and padding modes existed: the behaviour they were trained with.
        let ModelSpec::Tfno(s) = spec else {
            unreachable!()
        };
        assert_eq!(
            (s.frame.embedding, s.frame.padding_mode),
            (Embedding::Linear, PaddingMode::OneSided)
        );
        let mut v = serde_json::to_value(&specs()[3]).unwrap();
        assert_eq!(
            (&v["embedding"], &v["domain_padding_mode"]),
            (&json!("periodic"), &json!("symmetric"))
        );
        v["embedding"] = json!("spiral");
        let err = serde_json::from_value::<ModelSpec>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("spiral"), "{err}");
        let v1_adam: AdamMeta = serde_json::from_value(json!({"step": 3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-4, "decoupled": true})).unwrap();
        assert!(v1_adam.params.decoupled && v1_adam.step == 3);
    }

    fn round_trip(spec: ModelSpec) {
        let kind = spec.kind();
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ModelSpec>(&text).unwrap(), spec);
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
        for epoch in 0..3 {
            model.zero_grad();
            let p = model.forward(&x).unwrap();
            let (_, g) = relative_l2(&p, &y).unwrap();
            model.backward(&g).unwrap();
            state.adam.update(&mut model.parameters(), 1e-2).unwrap();
            // Values whose shortest decimal form has 17 digits must come back exactly.
            state.history.push(EpochRecord {
                epoch,
                learning_rate: 1e-3,
                train_loss: 0.44911287170947517,
                test_l2: 0.1 + 0.2,
                test_h1: 1.0 / 3.0,
                seconds: 0.5,
            });
        }
        state.epoch = 3;
        // Stopped inside epoch 3, as an interrupt leaves it.
        state.partial = Some(PartialEpoch {
            batches: 2,
            loss_sum: 0.1 + 0.2,
            seconds: 0.25,
        });
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
        assert_eq!(
            loaded.state, state,
            "{kind}: the training state comes back exactly"
        );
        assert_eq!(loaded.x_norm, norm);
        assert_eq!(loaded.data["input"], "a");
        assert!(!dir.path().join("c.partial").exists());
        // One flipped bit in the last tensor value is caught by the checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let err = load(&path)
            .err()
            .expect("a damaged file is refused")
            .to_string();
        assert!(err.contains("SHA-256"), "{kind}: {err}");
    }

    #[test]
    fn a_spec_too_large_to_hold_is_refused_before_it_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let spec = specs().remove(0);
        let mut model = Model::<f32>::new(spec).unwrap();
        let params = pdekit_operators::train::trainer::TrainParams::default();
        let norm = UnitGaussian {
            mean: vec![0.0],
            std: vec![1.0],
        };
        let state = TrainState::new(&params);
        save(&path, &mut model, (&norm, &norm), &state, json!({})).unwrap();
        // Rewrite the spec's modes as a crafted file would.
        let bytes = std::fs::read(&path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let model_meta = header["__metadata__"]["model"].as_str().unwrap();
        let mut spec: Value = serde_json::from_str(model_meta).unwrap();
        spec["modes"] = json!([100000, 100000]);
        header["__metadata__"]["model"] = Value::String(spec.to_string());
        let mut text = header.to_string();
        while !text.len().is_multiple_of(8) {
            text.push(' ');
        }
        let mut crafted = (text.len() as u64).to_le_bytes().to_vec();
        crafted.extend_from_slice(text.as_bytes());
        crafted.extend_from_slice(&bytes[8 + n..]);
        std::fs::write(&path, crafted).unwrap();
        let err = load(&path).err().expect("refused").to_string();
        assert!(
            err.contains("metadata `model`: this FNO needs at least"),
            "{err}"
        );
    }
}
