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
use pdekit_operators::models::gp::{GpArrays, GpFitInfo, GpOperator, GpSpec, InputMap, OutputMap};
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
    let tensors: Vec<(String, Array)> = tensors
        .into_iter()
        .map(|(name, v)| (name, Array::F32(v)))
        .collect();
    write(path, &meta, &tensors)
}

/// A tensor to store: values and their dtype (shape `[len]`; the spec fixes the layout).
pub enum Array {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Array {
    fn dtype(&self) -> (&'static str, usize) {
        match self {
            Array::F32(_) => ("F32", 4),
            Array::F64(_) => ("F64", 8),
        }
    }

    fn len(&self) -> usize {
        match self {
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }
}

/// Writes a safetensors file (atomically): `meta`'s entries as string metadata, with the
/// tensors' SHA-256, and the tensors one after the other.
pub fn write(path: &Path, meta: &Value, tensors: &[(String, Array)]) -> Result<PathBuf, DataError> {
    // safetensors metadata is a map of strings.
    let mut metadata = Map::new();
    for (k, v) in meta.as_object().expect("an object") {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        metadata.insert(k.clone(), Value::String(text));
    }
    let bytes_total: usize = tensors.iter().map(|(_, t)| t.dtype().1 * t.len()).sum();
    let mut payload = Vec::with_capacity(bytes_total);
    for (_, t) in tensors {
        match t {
            Array::F32(v) => v
                .iter()
                .for_each(|x| payload.extend_from_slice(&x.to_le_bytes())),
            Array::F64(v) => v
                .iter()
                .for_each(|x| payload.extend_from_slice(&x.to_le_bytes())),
        }
    }
    metadata.insert(
        CHECKSUM.into(),
        Value::String(sha256_hex([payload.as_slice()])),
    );
    let mut header = Map::new();
    header.insert("__metadata__".into(), Value::Object(metadata));
    let mut offset = 0usize;
    for (name, t) in tensors {
        let (dtype, size) = t.dtype();
        let end = offset + size * t.len();
        header.insert(
            name.clone(),
            json!({"dtype": dtype, "shape": [t.len()], "data_offsets": [offset, end]}),
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
/// A checkpoint file read and checked (format, version, checksum), its tensors not yet decoded.
pub struct Stored {
    pub path: PathBuf,
    header: Map<String, Value>,
    bytes: Vec<u8>,
    body: usize,
}

impl Stored {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let corrupt = |message: String| DataError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let bytes = crate::files::read_bytes(path)?;
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
        if !header.get("__metadata__").is_some_and(Value::is_object) {
            return Err(corrupt("no __metadata__: not a pdekit checkpoint".into()));
        }
        let stored = Self {
            path: path.to_path_buf(),
            header,
            bytes,
            body,
        };
        if stored.text("format")? != FORMAT {
            return Err(corrupt(format!(
                "format is `{}`, expected `{FORMAT}`",
                stored.text("format")?
            )));
        }
        if let Some(sum) = stored.meta().get(CHECKSUM).and_then(Value::as_str) {
            if sha256_hex([stored.data()]) != sum {
                return Err(corrupt(
                    "the tensor bytes do not match their SHA-256 checksum: the file was damaged or altered after it was written".into(),
                ));
            }
        }
        let version = stored.text("format_version")?;
        if !READS.contains(&version) {
            return Err(corrupt(format!(
                "format_version {version} is not supported (this pdekit reads {})",
                READS.join(" and ")
            )));
        }
        Ok(stored)
    }

    pub fn corrupt(&self, message: String) -> DataError {
        DataError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    fn meta(&self) -> &Map<String, Value> {
        self.header["__metadata__"]
            .as_object()
            .expect("checked on open")
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.body..]
    }

    fn has(&self, name: &str) -> bool {
        self.header.contains_key(name)
    }

    /// A metadata entry's text.
    pub fn text(&self, k: &str) -> Result<&str, DataError> {
        self.meta()
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| self.corrupt(format!("metadata `{k}` is missing")))
    }

    /// A metadata entry parsed as JSON.
    pub fn json(&self, k: &str) -> Result<Value, DataError> {
        serde_json::from_str(self.text(k)?)
            .map_err(|e| self.corrupt(format!("metadata `{k}`: {e}")))
    }

    /// A metadata entry as `T`.
    pub fn value<T: serde::de::DeserializeOwned>(&self, k: &str) -> Result<T, DataError> {
        serde_json::from_value(self.json(k)?)
            .map_err(|e| self.corrupt(format!("metadata `{k}`: {e}")))
    }

    /// The model's kind (`fno`, …, `gp`).
    pub fn kind(&self) -> Result<String, DataError> {
        let model = self.json("model")?;
        model["kind"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.corrupt("metadata `model` has no `kind`".into()))
    }

    fn raw(&self, name: &str, dtype: &str, size: usize) -> Result<&[u8], DataError> {
        let entry = self
            .header
            .get(name)
            .ok_or_else(|| self.corrupt(format!("tensor `{name}` is missing")))?;
        if entry["dtype"].as_str() != Some(dtype) {
            return Err(self.corrupt(format!("tensor `{name}` is not {dtype}")));
        }
        let data = self.data();
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
            || !(off[1] - off[0]).is_multiple_of(size)
        {
            return Err(self.corrupt(format!("tensor `{name}` has bad data offsets {off:?}")));
        }
        Ok(&data[off[0]..off[1]])
    }

    pub fn f32(&self, name: &str) -> Result<Vec<f32>, DataError> {
        Ok(self
            .raw(name, "F32", 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    pub fn f64(&self, name: &str) -> Result<Vec<f64>, DataError> {
        Ok(self
            .raw(name, "F64", 8)?
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// Reads a checkpoint and rebuilds its model, normalisers and training state.
pub fn load(path: &Path) -> Result<Loaded, DataError> {
    from_stored(&Stored::open(path)?)
}

/// A neural-operator checkpoint's model, normalisers and training state.
pub fn from_stored(stored: &Stored) -> Result<Loaded, DataError> {
    let corrupt = |message: String| stored.corrupt(message);
    let read = |k: &str| stored.json(k);
    let spec: ModelSpec = serde_json::from_value(read("model")?)
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
    spec.validate()
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
    crate::meta::model_fits_in_memory(&spec)
        .map_err(|e| corrupt(format!("metadata `model`: {e}")))?;
    let mut net = Model::<f32>::new(spec).map_err(|e| corrupt(format!("model spec: {e}")))?;
    let tensor = |name: &str| stored.f32(name);
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
    if stored.has(&format!("optimizer.m.{}", names[0])) {
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

/// A loaded GP operator checkpoint.
pub struct LoadedGp {
    pub gp: GpOperator,
    /// The free-form `data` metadata (dataset path, field names, split).
    pub data: Value,
}

/// Writes a fitted GP operator to `path` (atomically): its spec (with `kind = "gp"`) and maps as
/// metadata, every array it predicts from as an F64 tensor, and the fit's report.
pub fn save_gp(
    path: &Path,
    gp: &GpOperator,
    fit: &GpFitInfo,
    data: Value,
) -> Result<PathBuf, DataError> {
    let mut model = serde_json::to_value(&gp.spec).expect("plain data");
    model["kind"] = json!("gp");
    let mut tensors = Vec::new();
    let mut map_meta = |prefix: &str, kind: &str, mean: &[f64], second: (&str, &[f64])| {
        tensors.push((format!("{prefix}.mean"), Array::F64(mean.to_vec())));
        tensors.push((
            format!("{prefix}.{}", second.0),
            Array::F64(second.1.to_vec()),
        ));
        json!({ "kind": kind })
    };
    let input_map = match &gp.input_map {
        InputMap::Standardize { mean, std } => map_meta("input", "standardize", mean, ("std", std)),
        InputMap::Pca {
            mean,
            basis,
            components,
        } => {
            let mut m = map_meta("input", "pca", mean, ("basis", basis));
            m["components"] = json!(components);
            m
        }
    };
    let output_map = match &gp.output_map {
        OutputMap::Standardize { mean, std } => {
            map_meta("output", "standardize", mean, ("std", std))
        }
        OutputMap::Pca {
            mean,
            basis,
            components,
            scale,
        } => {
            let mut m = map_meta("output", "pca", mean, ("basis", basis));
            m["components"] = json!(components);
            m["scale"] = json!(scale);
            m
        }
    };
    match &gp.arrays {
        GpArrays::Exact { features, targets } => {
            tensors.push(("features".into(), Array::F64(features.clone())));
            tensors.push(("targets".into(), Array::F64(targets.clone())));
        }
        GpArrays::Dtc { inducing, a, b } => {
            tensors.push(("inducing".into(), Array::F64(inducing.clone())));
            tensors.push(("a".into(), Array::F64(a.clone())));
            tensors.push(("b".into(), Array::F64(b.clone())));
        }
    }
    let meta = json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdekit_version": env!("CARGO_PKG_VERSION"),
        "created": crate::meta::now_utc(),
        "commit": crate::meta::commit(),
        "model": model,
        "input_map": input_map,
        "output_map": output_map,
        "fit": fit,
        "data": data,
    });
    write(path, &meta, &tensors)
}

/// A GP operator checkpoint's model, rebuilt from its arrays (bit-identical predictions).
pub fn gp_from_stored(stored: &Stored) -> Result<LoadedGp, DataError> {
    let spec: GpSpec = stored.value("model")?;
    let (input, output) = (stored.json("input_map")?, stored.json("output_map")?);
    let count = |m: &Value, k: &str| -> Result<usize, DataError> {
        m[k].as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| stored.corrupt(format!("metadata map has no `{k}`")))
    };
    let input_map = match input["kind"].as_str() {
        Some("standardize") => InputMap::Standardize {
            mean: stored.f64("input.mean")?,
            std: stored.f64("input.std")?,
        },
        Some("pca") => InputMap::Pca {
            mean: stored.f64("input.mean")?,
            basis: stored.f64("input.basis")?,
            components: count(&input, "components")?,
        },
        other => {
            return Err(stored.corrupt(format!("metadata `input_map`: unknown kind {other:?}")))
        }
    };
    let output_map = match output["kind"].as_str() {
        Some("standardize") => OutputMap::Standardize {
            mean: stored.f64("output.mean")?,
            std: stored.f64("output.std")?,
        },
        Some("pca") => OutputMap::Pca {
            mean: stored.f64("output.mean")?,
            basis: stored.f64("output.basis")?,
            components: count(&output, "components")?,
            scale: output["scale"]
                .as_f64()
                .ok_or_else(|| stored.corrupt("metadata `output_map` has no `scale`".into()))?,
        },
        other => {
            return Err(stored.corrupt(format!("metadata `output_map`: unknown kind {other:?}")))
        }
    };
    // The maps' arrays must match the sizes they claim before anything indexes them.
    let sizes_ok = match (&input_map, &output_map) {
        (InputMap::Standardize { mean, std }, _) if mean.len() != std.len() => false,
        (
            InputMap::Pca {
                mean,
                basis,
                components,
            },
            _,
        ) if basis.len() != mean.len() * components => false,
        (_, OutputMap::Standardize { mean, std }) if mean.len() != std.len() => false,
        (
            _,
            OutputMap::Pca {
                mean,
                basis,
                components,
                ..
            },
        ) if basis.len() != mean.len() * components => false,
        _ => true,
    };
    if !sizes_ok {
        return Err(
            stored.corrupt("the input or output map's arrays have inconsistent sizes".into())
        );
    }
    let arrays = if spec.section.inducing.is_some() {
        GpArrays::Dtc {
            inducing: stored.f64("inducing")?,
            a: stored.f64("a")?,
            b: stored.f64("b")?,
        }
    } else {
        GpArrays::Exact {
            features: stored.f64("features")?,
            targets: stored.f64("targets")?,
        }
    };
    let gp = GpOperator::from_parts(spec, input_map, output_map, arrays)
        .map_err(|e| stored.corrupt(format!("the GP does not rebuild: {e}")))?;
    Ok(LoadedGp {
        gp,
        data: stored.json("data").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pdekit_operators::layers::axial::Mixing;
    use pdekit_operators::layers::compose::{Embedding, PaddingMode};
    use pdekit_operators::layers::factorized::{Factorization, Rank};
    use pdekit_operators::layers::patching::MgPatching;
    use pdekit_operators::models::deeponet::{DeepOnetSection, DeepOnetSpec};
    use pdekit_operators::models::factformer::FactFormerSpec;
    use pdekit_operators::models::ffno::FfnoSpec;
    use pdekit_operators::models::fno::{FnoSpec, GridFrame};
    use pdekit_operators::models::mgtfno::MgTfnoSpec;
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
            block: Default::default(),
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
            ModelSpec::MgTfno(MgTfnoSpec {
                tfno: FnoSpec {
                    in_channels: 2 * (1 + 2),
                    ..fno(Factorization::Tucker(Rank::Fraction(0.5)))
                },
                patching: MgPatching {
                    levels: 1,
                    padding_fraction: 0.125,
                },
                stitching: false,
                patch_batch: Some(3),
                global_coordinates: true,
            }),
            ModelSpec::FactFormer(FactFormerSpec {
                in_channels: 1,
                out_channels: 1,
                dims: 2,
                width: 6,
                depth: 2,
                heads: 2,
                dim_head: 3,
                latent: 4,
                kernel_multiplier: 2,
                variant: Mixing::Parallel,
                implicit: true,
                frame: GridFrame {
                    embedding: Embedding::Periodic,
                    ..GridFrame::default()
                },
                seed: 6,
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
                peak_rss_mib: Some(123.456_789),
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
