//! FNOs to and from neuraloperator 2.x checkpoints, as `BaseModel.save_checkpoint(DIR, NAME)`
//! writes them: `DIR/NAME_state_dict.pt` (the `state_dict`) and `DIR/NAME_metadata.pkl` (the
//! constructor's keyword arguments), which `neuralop.models.FNO.from_checkpoint(DIR, NAME)` reads.
//! The normalisers go beside them as `DIR/NAME_normalizers.pt`, the `state_dict` of a
//! `DefaultDataProcessor` with two per-channel `UnitGaussianNormalizer`s.
//!
//! The two models compute the same function when pdekit's FNO is built with
//! `block = "neuraloperator"` (a spectral bias, no GELU on `h` in the last block), linear grid
//! coordinates and no domain padding. The layouts differ as follows:
//! - pointwise weights are `[in][out]` here and `(out, in, 1)` there (a `Conv1d`);
//! - spectral weights are `[k_0, …, k_{d−1}, in, out]` (re, im interleaved) here and complex
//!   `(in, out, k_0, …, k_{d−1})` there;
//! - along every axis but the last, pdekit keeps frequencies `0, …, m−1, −m, …, −1` and
//!   neuraloperator keeps the same frequencies fft-shifted, `−m, …, m−1`. Its `n_modes` counts
//!   `2m` there, and `2(m − 1)` on the last axis, of which it keeps `n // 2 + 1 = m`.
//!
//! A TFNO's factors map the same way: tensorly's Tucker core has the axes `(in, out, modes…)`
//! where pdekit's has `[modes…, in, out]`, its factors are the same `n × r` matrices (the
//! non-last mode axes' rows reordered as above), and its CP weights, which pdekit does not have,
//! are written as 1 and folded into the input-channel factor on import. The ranks are written
//! explicitly (`rank = (r_in, r_out, r_modes…)` for Tucker), so tensorly builds exactly these
//! factors.

use super::torch_file::{self, DType, Py, TensorData, TorchFile};
use crate::checkpoint;
use crate::data::DataError;
use crate::PdekitError;
use pdekit_operators::layers::factorized::{Factorization, Rank};
// The kept block's shape, `[2m_0, …, 2m_{d−2}, m_last]`, is the same in both layouts.
use pdekit_operators::layers::spectral::kept_shape;
use pdekit_operators::layers::Layer;
use pdekit_operators::models::fno::{BlockStyle, FnoSpec, GridFrame};
use pdekit_operators::models::{Model, ModelSpec};
use pdekit_operators::train::normalizer::UnitGaussian;
use pdekit_operators::train::trainer::{TrainParams, TrainState};
use serde_json::json;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// neuraloperator's `UnitGaussianNormalizer` divides by `std + eps`; pdekit's stored standard
/// deviation already includes the same `eps`.
const NORMALIZER_EPS: f64 = 1e-7;
/// The model version neuraloperator 2.x stamps on FNO checkpoints.
const NEURALOP_MODEL_VERSION: &str = "0.1.0";

#[derive(Debug, Error)]
pub enum InteropError {
    #[error("{}: cannot be exported to neuraloperator: {why}", checkpoint.display())]
    NotExportable { checkpoint: PathBuf, why: String },
    #[error("{}: `{key}` is {got}; pdekit reads neuraloperator FNOs with {expected}", path.display())]
    Unsupported {
        path: PathBuf,
        key: String,
        expected: String,
        got: String,
    },
    #[error("{}: `{key}` has shape {got:?}; the model of its metadata needs {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{}: no `{key}`{}", path.display(), if available.is_empty() { String::new() } else { format!("; it holds {available}") })]
    Missing {
        path: PathBuf,
        key: String,
        available: String,
    },
    #[error("{0}")]
    Data(#[from] DataError),
}

/// What `pdekit export` wrote.
#[derive(Debug, Clone)]
pub struct ExportInfo {
    pub state_dict: PathBuf,
    pub metadata: PathBuf,
    pub normalizers: PathBuf,
    /// The model class to load it with: `FNO` or `TFNO`.
    pub class: &'static str,
    pub tensors: usize,
    pub values: usize,
}

/// What `pdekit import` read and wrote.
#[derive(Debug, Clone)]
pub struct ImportInfo {
    pub checkpoint: PathBuf,
    pub spec: FnoSpec,
    pub tensors: usize,
    /// Whether normalisers were read (else the identity is stored).
    pub normalized: bool,
}

/// How one pdekit parameter is laid out in neuraloperator's state dict.
#[derive(Debug, Clone)]
enum Layout {
    /// `[in][out]` here, `(out, in, 1)` there.
    Pointwise { c_in: usize, c_out: usize },
    /// A vector of `n` there and here.
    Vector(usize),
    /// `[c]` here, `(1, c, 1, …)` there (a soft gate).
    Gate(usize),
    /// `[c]` here, `(c, 1, …)` there (the spectral bias).
    ChannelBias(usize),
    /// The dense spectral weight (see the module docs).
    Spectral { modes: Vec<usize>, c: usize },
    /// A Tucker core: `ranks` in pdekit's axis order `[modes…, in, out]`; tensorly's core has
    /// the axes `(in, out, modes…)`.
    TuckerCore { ranks: Vec<usize> },
    /// A complex factor matrix `n × r`, the same layout in both; `shift = m` reorders the rows
    /// of a non-last mode axis as [`for_each_mode`] does.
    Factor {
        n: usize,
        r: usize,
        shift: Option<usize>,
    },
    /// tensorly's CP weights, `r` complex values (pdekit has none: its weights are 1).
    CpWeights(usize),
}

impl Layout {
    fn torch_shape(&self, dims: usize) -> Vec<usize> {
        let ones = std::iter::repeat_n(1, dims);
        match self {
            Layout::Pointwise { c_in, c_out } => vec![*c_out, *c_in, 1],
            Layout::Vector(n) => vec![*n],
            Layout::Gate(c) => [1, *c].into_iter().chain(ones).collect(),
            Layout::ChannelBias(c) => std::iter::once(*c).chain(ones).collect(),
            Layout::Spectral { modes, c } => {
                [*c, *c].into_iter().chain(kept_shape(modes)).collect()
            }
            Layout::TuckerCore { ranks } => tucker_axes(ranks.len()).map(|a| ranks[a]).collect(),
            Layout::Factor { n, r, .. } => vec![*n, *r],
            Layout::CpWeights(r) => vec![*r],
        }
    }

    /// pdekit's values in neuraloperator's layout.
    fn pdekit_to_torch(&self, values: &[f32], dims: usize) -> TensorData {
        let shape = self.torch_shape(dims);
        let v = |i: usize| values[i] as f64;
        match self {
            Layout::Pointwise { c_in, c_out } => {
                let mut out = Vec::with_capacity(values.len());
                for o in 0..*c_out {
                    for i in 0..*c_in {
                        out.push(v(i * c_out + o));
                    }
                }
                TensorData::f32(&shape, out)
            }
            Layout::Vector(_) | Layout::Gate(_) | Layout::ChannelBias(_) => {
                TensorData::f32(&shape, values.iter().map(|&x| x as f64).collect())
            }
            Layout::CpWeights(r) => TensorData {
                dtype: DType::Complex64,
                shape,
                values: (0..2 * r)
                    .map(|i| if i % 2 == 0 { 1.0 } else { 0.0 })
                    .collect(),
            },
            Layout::Spectral { .. } | Layout::TuckerCore { .. } | Layout::Factor { .. } => {
                let mut out = vec![0.0; values.len()];
                self.for_each_complex(|pdekit, torch| {
                    out[2 * torch] = v(2 * pdekit);
                    out[2 * torch + 1] = v(2 * pdekit + 1);
                });
                TensorData {
                    dtype: DType::Complex64,
                    shape,
                    values: out,
                }
            }
        }
    }

    /// Calls `f(pdekit_index, torch_index)` for every complex entry of a spectral weight, core
    /// or factor.
    fn for_each_complex(&self, mut f: impl FnMut(usize, usize)) {
        match self {
            Layout::Spectral { modes, c } => for_each_mode(modes, *c, f),
            Layout::TuckerCore { ranks } => {
                // tensorly's axis k is pdekit's axis order[k], whose row-major stride is stride[..].
                let order: Vec<usize> = tucker_axes(ranks.len()).collect();
                let mut stride = vec![1usize; ranks.len()];
                for a in (0..ranks.len() - 1).rev() {
                    stride[a] = stride[a + 1] * ranks[a + 1];
                }
                let torch_shape: Vec<usize> = order.iter().map(|&a| ranks[a]).collect();
                let mut index = vec![0usize; ranks.len()];
                for t in 0..ranks.iter().product() {
                    f(
                        index.iter().zip(&order).map(|(&i, &a)| i * stride[a]).sum(),
                        t,
                    );
                    for k in (0..index.len()).rev() {
                        index[k] += 1;
                        if index[k] < torch_shape[k] {
                            break;
                        }
                        index[k] = 0;
                    }
                }
            }
            Layout::Factor { n, r, shift } => {
                for row in 0..*n {
                    let from = shift.map_or(row, |m| (row + m) % n);
                    for col in 0..*r {
                        f(from * r + col, row * r + col);
                    }
                }
            }
            _ => unreachable!("complex layouts only"),
        }
    }

    /// neuraloperator's values (already checked to have [`Self::torch_shape`]) in pdekit's
    /// layout.
    fn torch_to_pdekit(&self, t: &TensorData) -> Vec<f32> {
        let v = |i: usize| t.values[i] as f32;
        match self {
            Layout::Pointwise { c_in, c_out } => {
                let mut out = vec![0.0; c_in * c_out];
                for o in 0..*c_out {
                    for i in 0..*c_in {
                        out[i * c_out + o] = v(o * c_in + i);
                    }
                }
                out
            }
            Layout::Vector(_) | Layout::Gate(_) | Layout::ChannelBias(_) | Layout::CpWeights(_) => {
                t.values.iter().map(|&x| x as f32).collect()
            }
            Layout::Spectral { .. } | Layout::TuckerCore { .. } | Layout::Factor { .. } => {
                let mut out = vec![0.0; t.values.len()];
                self.for_each_complex(|pdekit, torch| {
                    out[2 * pdekit] = v(2 * torch);
                    out[2 * pdekit + 1] = v(2 * torch + 1);
                });
                out
            }
        }
    }
}

/// tensorly's weight axes `(in, out, modes…)` as pdekit's axis numbers (`[modes…, in, out]`).
fn tucker_axes(n: usize) -> impl Iterator<Item = usize> {
    [n - 2, n - 1].into_iter().chain(0..n - 2)
}

/// Calls `f(pdekit_index, torch_index)` for every complex entry of a `c × c` spectral weight.
fn for_each_mode(modes: &[usize], c: usize, mut f: impl FnMut(usize, usize)) {
    let shape = kept_shape(modes);
    let d = shape.len();
    let k: usize = shape.iter().product();
    let mut index = vec![0usize; d];
    for flat in 0..k {
        // pdekit's position along each non-last axis, from neuraloperator's fft-shifted one.
        let mut torch_mode = 0;
        for a in 0..d {
            let j = if a + 1 == d {
                index[a]
            } else {
                (index[a] + modes[a]) % shape[a]
            };
            torch_mode = torch_mode * shape[a] + j;
        }
        for i in 0..c {
            for o in 0..c {
                f((flat * c + i) * c + o, (i * c + o) * k + torch_mode);
            }
        }
        for a in (0..d).rev() {
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
}

/// Every parameter of an FNO with neuraloperator's block: pdekit's name, neuraloperator's key,
/// and the layout.
fn parameter_map(spec: &FnoSpec) -> Vec<(String, String, Layout)> {
    let (w, d) = (spec.width, spec.modes.len());
    let hidden = (w / 2).max(1);
    let mut map = Vec::new();
    let mut mlp = |pdekit: &str, torch: &str, sizes: [usize; 3]| {
        for (n, (c_in, c_out)) in [(sizes[0], sizes[1]), (sizes[1], sizes[2])]
            .into_iter()
            .enumerate()
        {
            map.push((
                format!("{pdekit}.fc{}.weight", n + 1),
                format!("{torch}.fcs.{n}.weight"),
                Layout::Pointwise { c_in, c_out },
            ));
            map.push((
                format!("{pdekit}.fc{}.bias", n + 1),
                format!("{torch}.fcs.{n}.bias"),
                Layout::Vector(c_out),
            ));
        }
    };
    mlp("lifting", "lifting", [spec.in_channels + d, 2 * w, w]);
    for l in 0..spec.layers {
        mlp(
            &format!("blocks.{l}.mlp"),
            &format!("fno_blocks.channel_mlp.{l}"),
            [w, hidden, w],
        );
    }
    mlp("projection", "projection", [w, 2 * w, spec.out_channels]);
    for l in 0..spec.layers {
        let (p, t) = (format!("blocks.{l}"), "fno_blocks");
        let conv = format!("{t}.convs.{l}.weight");
        let mut weight_shape = kept_shape(&spec.modes);
        weight_shape.extend([w, w]);
        let ranks = spec
            .factorization
            .ranks(&weight_shape)
            .expect("a validated spec");
        // A factor of pdekit's axis a, as tensorly's factor_k.
        let factors = |r: &dyn Fn(usize) -> usize| -> Vec<(String, String, Layout)> {
            tucker_axes(weight_shape.len())
                .enumerate()
                .map(|(k, a)| {
                    (
                        format!("{p}.conv.weight.factor.{a}"),
                        format!("{conv}.factors.factor_{k}"),
                        Layout::Factor {
                            n: weight_shape[a],
                            r: r(a),
                            shift: (a + 1 < spec.modes.len()).then(|| spec.modes[a]),
                        },
                    )
                })
                .collect()
        };
        match &spec.factorization {
            Factorization::Dense => map.push((
                format!("{p}.conv.weight"),
                format!("{conv}.tensor"),
                Layout::Spectral {
                    modes: spec.modes.clone(),
                    c: w,
                },
            )),
            Factorization::Tucker(_) => {
                map.push((
                    format!("{p}.conv.weight.core"),
                    format!("{conv}.core"),
                    Layout::TuckerCore {
                        ranks: ranks.clone(),
                    },
                ));
                map.extend(factors(&|a| ranks[a]));
            }
            Factorization::Cp(_) => {
                // tensorly's CP weights have no pdekit parameter: 1 on export, folded into
                // the input-channel factor on import.
                map.push((
                    String::new(),
                    format!("{conv}.weights"),
                    Layout::CpWeights(ranks[0]),
                ));
                map.extend(factors(&|_| ranks[0]));
            }
        }
        map.push((
            format!("{p}.conv.bias"),
            format!("{t}.convs.{l}.bias"),
            Layout::ChannelBias(w),
        ));
        map.push((
            format!("{p}.skip.weight"),
            format!("{t}.fno_skips.{l}.conv.weight"),
            Layout::Pointwise { c_in: w, c_out: w },
        ));
        map.push((
            format!("{p}.gate.weight"),
            format!("{t}.channel_mlp_skips.{l}.weight"),
            Layout::Gate(w),
        ));
    }
    map
}

/// neuraloperator's `n_modes` for pdekit's `modes`.
fn neuralop_modes(modes: &[usize]) -> Vec<usize> {
    let d = modes.len();
    modes
        .iter()
        .enumerate()
        .map(|(a, &m)| if a + 1 == d { 2 * (m - 1) } else { 2 * m })
        .collect()
}

/// The keyword arguments `neuralop.models.FNO` is built with, as its `save_checkpoint` stores
/// them.
fn constructor_arguments(spec: &FnoSpec) -> Py {
    let int = |n: usize| Py::Int(n as i64);
    let mut weight_shape = kept_shape(&spec.modes);
    weight_shape.extend([spec.width, spec.width]);
    let ranks = spec
        .factorization
        .ranks(&weight_shape)
        .expect("a validated spec");
    // tensorly's ranks are given explicitly, in its axis order, so it builds exactly ours.
    let (factorization, rank) = match &spec.factorization {
        Factorization::Dense => (Py::None, Py::Float(1.0)),
        Factorization::Tucker(_) => (
            Py::str("Tucker"),
            Py::Tuple(tucker_axes(ranks.len()).map(|a| int(ranks[a])).collect()),
        ),
        Factorization::Cp(_) => (Py::str("CP"), int(ranks[0])),
    };
    let items: Vec<(&str, Py)> = vec![
        (
            "n_modes",
            Py::Tuple(neuralop_modes(&spec.modes).into_iter().map(int).collect()),
        ),
        ("in_channels", int(spec.in_channels)),
        ("out_channels", int(spec.out_channels)),
        ("hidden_channels", int(spec.width)),
        ("n_layers", int(spec.layers)),
        ("lifting_channel_ratio", int(2)),
        ("projection_channel_ratio", int(2)),
        ("positional_embedding", Py::str("grid")),
        ("non_linearity", Py::global("torch._C._nn", "gelu")),
        ("norm", Py::None),
        ("complex_data", Py::Bool(false)),
        ("use_channel_mlp", Py::Bool(true)),
        ("channel_mlp_dropout", int(0)),
        ("channel_mlp_expansion", Py::Float(0.5)),
        ("channel_mlp_skip", Py::str("soft-gating")),
        ("fno_skip", Py::str("linear")),
        ("resolution_scaling_factor", Py::None),
        ("domain_padding", Py::None),
        ("fno_block_precision", Py::str("full")),
        ("stabilizer", Py::None),
        ("max_n_modes", Py::None),
        ("factorization", factorization),
        ("rank", rank),
        ("fixed_rank_modes", Py::Bool(false)),
        ("implementation", Py::str("factorized")),
        ("decomposition_kwargs", Py::None),
        ("separable", Py::Bool(false)),
        ("preactivation", Py::Bool(false)),
        (
            "conv_module",
            Py::global("neuralop.layers.spectral_convolution", "SpectralConv"),
        ),
        ("_version", Py::str(NEURALOP_MODEL_VERSION)),
        ("args", Py::Tuple(Vec::new())),
        ("_name", Py::str("FNO")),
    ];
    Py::Dict(items.into_iter().map(|(k, v)| (Py::str(k), v)).collect())
}

/// `DIR/NAME_state_dict.pt` and the other two file names for a checkpoint prefix `DIR/NAME`.
pub fn files(prefix: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let name = prefix
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let with = |suffix: &str| prefix.with_file_name(format!("{name}{suffix}"));
    (
        with("_state_dict.pt"),
        with("_metadata.pkl"),
        with("_normalizers.pt"),
    )
}

/// Writes the FNO or TFNO of `checkpoint_path` as the neuraloperator checkpoint `prefix`
/// (`DIR/NAME`).
pub fn export(checkpoint_path: &Path, prefix: &Path) -> Result<ExportInfo, PdekitError> {
    let mut loaded = checkpoint::load(checkpoint_path)?;
    let not = |why: String| InteropError::NotExportable {
        checkpoint: checkpoint_path.to_path_buf(),
        why,
    };
    let spec = match loaded.model.spec() {
        ModelSpec::Fno(s) | ModelSpec::Tfno(s) => s,
        other => {
            return Err(not(format!(
                "it is a {}; neuraloperator checkpoints are written for FNOs",
                other.name()
            ))
            .into())
        }
    };
    if spec.block != BlockStyle::Neuraloperator {
        return Err(not("its FNO blocks are pdekit's (a GELU after the spectral sum of the last block too, and no spectral bias), so neuraloperator would compute a different function; train it with `block = \"neuraloperator\"` in [train.fno]".into()).into());
    }
    if spec.frame != GridFrame::default() {
        return Err(not(format!(
            "it uses {}; export needs the default frame (linear grid coordinates, no domain padding)",
            describe_frame(&spec.frame)
        ))
        .into());
    }
    let dims = spec.modes.len();
    let map = parameter_map(&spec);
    let mut values = std::collections::HashMap::new();
    for p in loaded.model.parameters() {
        values.insert(p.name.clone(), p.value.to_vec());
    }
    let mut tensors = Vec::new();
    let mut state = Vec::new();
    for (name, key, layout) in &map {
        if let Layout::CpWeights(_) = layout {
            let t = layout.pdekit_to_torch(&[], dims);
            state.push((
                Py::Str(key.clone()),
                torch_file::tensor_ref(tensors.len(), &t),
            ));
            tensors.push(t);
            continue;
        }
        let v = values.get(name).ok_or_else(|| {
            not(format!(
                "it has no parameter `{name}` (its parameters: {:?})",
                {
                    let mut k: Vec<_> = values.keys().collect();
                    k.sort();
                    k
                }
            ))
        })?;
        let t = layout.pdekit_to_torch(v, dims);
        state.push((
            Py::Str(key.clone()),
            torch_file::tensor_ref(tensors.len(), &t),
        ));
        tensors.push(t);
    }
    let mapped = map.iter().filter(|(name, ..)| !name.is_empty()).count();
    if mapped != values.len() {
        return Err(not(format!(
            "it has {} parameters, an FNO of its spec {mapped}",
            values.len(),
        ))
        .into());
    }
    let (state_path, meta_path, norm_path) = files(prefix);
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_dir(dir)?;
    }
    let stem = |p: &Path| {
        p.file_stem()
            .map_or_else(|| "archive".into(), |s| s.to_string_lossy().into_owned())
    };
    torch_file::save(&state_path, &stem(&state_path), &Py::Dict(state), &tensors)?;
    torch_file::save(
        &meta_path,
        &stem(&meta_path),
        &constructor_arguments(&spec),
        &[],
    )?;
    let mut norm_tensors = Vec::new();
    let mut norm_state = Vec::new();
    for (side, n) in [("in", &loaded.x_norm), ("out", &loaded.y_norm)] {
        let shape: Vec<usize> = [1, n.mean.len()]
            .into_iter()
            .chain(std::iter::repeat_n(1, dims))
            .collect();
        for (field, v) in [
            ("mean", n.mean.clone()),
            ("std", n.std.iter().map(|s| s - NORMALIZER_EPS).collect()),
        ] {
            let t = TensorData::f32(&shape, v);
            norm_state.push((
                Py::Str(format!("{side}_normalizer.{field}")),
                torch_file::tensor_ref(norm_tensors.len(), &t),
            ));
            norm_tensors.push(t);
        }
    }
    torch_file::save(
        &norm_path,
        &stem(&norm_path),
        &Py::Dict(norm_state),
        &norm_tensors,
    )?;
    Ok(ExportInfo {
        state_dict: state_path,
        metadata: meta_path,
        normalizers: norm_path,
        class: "FNO",
        tensors: tensors.len(),
        values: tensors.iter().map(|t| t.values.len()).sum(),
    })
}

fn describe_frame(frame: &GridFrame) -> String {
    let mut parts = Vec::new();
    if frame.domain_padding > 0.0 {
        parts.push(format!("domain_padding = {}", frame.domain_padding));
    }
    if frame.embedding != GridFrame::default().embedding {
        parts.push(format!("embedding = \"{}\"", frame.embedding.name()));
    }
    if frame.padding_mode != GridFrame::default().padding_mode {
        parts.push("a non-default domain_padding_mode".into());
    }
    parts.join(" and ")
}

/// The neuraloperator checkpoint `prefix` (`DIR/NAME`, as given to `save_checkpoint`) as a pdekit
/// checkpoint at `out`, with the normalisers of `normalizers` (a `DefaultDataProcessor`'s
/// `state_dict`) or, without it, the identity.
pub fn import(
    prefix: &Path,
    normalizers: Option<&Path>,
    out: &Path,
) -> Result<ImportInfo, PdekitError> {
    let (state_path, meta_path, _) = files(prefix);
    let meta = TorchFile::open(&meta_path)?;
    let state = TorchFile::open(&state_path)?;
    let spec = spec_from_arguments(&meta.object, &meta_path, &state)?;
    let map = parameter_map(&spec);
    let dims = spec.modes.len();
    let available = |obj: &Py| match obj {
        Py::Dict(items) => items
            .iter()
            .map(|(k, _)| k.describe())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.describe(),
    };
    let tensor = |file: &TorchFile, path: &Path, key: &str| -> Result<TensorData, InteropError> {
        match file.object.get(key) {
            Some(Py::Tensor(t)) => Ok(file.tensor(t)?),
            Some(other) => Err(InteropError::Unsupported {
                path: path.to_path_buf(),
                key: key.into(),
                expected: "a tensor".into(),
                got: other.describe(),
            }),
            None => Err(InteropError::Missing {
                path: path.to_path_buf(),
                key: key.into(),
                available: available(&file.object),
            }),
        }
    };
    let model_spec = if spec.factorization == Factorization::Dense {
        ModelSpec::Fno(spec.clone())
    } else {
        ModelSpec::Tfno(spec.clone())
    };
    let mut model = Model::<f32>::new(model_spec).map_err(|source| PdekitError::Model {
        what: format!("the FNO of {}", meta_path.display()),
        source,
    })?;
    let mut read = std::collections::HashMap::new();
    // tensorly's CP weights per layer prefix, folded into the input-channel factor below.
    let mut cp_weights = Vec::new();
    for (name, key, layout) in &map {
        let t = tensor(&state, &state_path, key)?;
        let expected = layout.torch_shape(dims);
        let complex = matches!(
            layout,
            Layout::Spectral { .. }
                | Layout::TuckerCore { .. }
                | Layout::Factor { .. }
                | Layout::CpWeights(_)
        );
        if t.shape != expected || complex != (t.dtype == DType::Complex64) {
            return Err(InteropError::Shape {
                path: state_path.clone(),
                key: key.clone(),
                expected,
                got: t.shape.clone(),
            }
            .into());
        }
        if let Layout::CpWeights(_) = layout {
            let input_factor = key.replace(".weights", ".factors.factor_0");
            cp_weights.push((input_factor, t.values));
            continue;
        }
        read.insert(name.clone(), layout.torch_to_pdekit(&t));
    }
    // W = Σ_r w_r Π_k F_k[·, r]: scale column r of the input-channel factor by w_r.
    for (factor_key, w) in cp_weights {
        let (name, ..) = map
            .iter()
            .find(|(_, k, _)| *k == factor_key)
            .expect("a CP weight has its factors");
        let f = read.get_mut(name).expect("read above");
        let r = w.len() / 2;
        for row in f.chunks_exact_mut(2 * r) {
            for (c, z) in row.chunks_exact_mut(2).enumerate() {
                let (a, b) = (z[0] as f64, z[1] as f64);
                let (wr, wi) = (w[2 * c], w[2 * c + 1]);
                z[0] = (a * wr - b * wi) as f32;
                z[1] = (a * wi + b * wr) as f32;
            }
        }
    }
    // Every tensor of the file must have been used: a key we did not map means a model we do
    // not build (e.g. norms or a different skip).
    if let Py::Dict(items) = &state.object {
        let known: std::collections::HashSet<&str> =
            map.iter().map(|(_, k, _)| k.as_str()).collect();
        for (k, v) in items {
            if let (Py::Str(k), Py::Tensor(_)) = (k, v) {
                if !known.contains(k.as_str()) {
                    return Err(InteropError::Unsupported {
                        path: state_path.clone(),
                        key: k.clone(),
                        expected: "only the tensors of an FNO with the supported options".into(),
                        got: "a tensor pdekit's FNO has no place for".into(),
                    }
                    .into());
                }
            }
        }
    }
    for p in model.parameters() {
        let v = read.remove(&p.name).ok_or_else(|| InteropError::Missing {
            path: state_path.clone(),
            key: p.name.clone(),
            available: String::new(),
        })?;
        p.value.copy_from_slice(&v);
    }
    let identity = |c: usize| UnitGaussian {
        mean: vec![0.0; c],
        std: vec![1.0; c],
    };
    let (x_norm, y_norm) = match normalizers {
        None => (identity(spec.in_channels), identity(spec.out_channels)),
        Some(path) => {
            let file = TorchFile::open(path)?;
            let norm = |side: &str, c: usize| -> Result<UnitGaussian, InteropError> {
                let mut fields = Vec::new();
                for field in ["mean", "std"] {
                    let key = format!("{side}_normalizer.{field}");
                    let t = tensor(&file, path, &key)?;
                    if t.numel() != c {
                        return Err(InteropError::Shape {
                            path: path.to_path_buf(),
                            key,
                            expected: [1, c]
                                .into_iter()
                                .chain(std::iter::repeat_n(1, dims))
                                .collect(),
                            got: t.shape,
                        });
                    }
                    fields.push(t.values);
                }
                let std = fields.pop().expect("std");
                Ok(UnitGaussian {
                    mean: fields.pop().expect("mean"),
                    std: std.iter().map(|s| s + NORMALIZER_EPS).collect(),
                })
            };
            (
                norm("in", spec.in_channels)?,
                norm("out", spec.out_channels)?,
            )
        }
    };
    let state = TrainState::new(&TrainParams::default());
    let data = json!({
        "input": "", "output": "",
        "imported_from": state_path,
        "normalizers": normalizers,
    });
    let written = checkpoint::save(out, &mut model, (&x_norm, &y_norm), &state, data)?;
    Ok(ImportInfo {
        checkpoint: written,
        spec,
        tensors: map.len(),
        normalized: normalizers.is_some(),
    })
}

/// pdekit's FNO spec from neuraloperator's constructor arguments, or the first argument it
/// cannot build.
fn spec_from_arguments(args: &Py, path: &Path, state: &TorchFile) -> Result<FnoSpec, InteropError> {
    let unsupported = |key: &str, expected: &str, got: &Py| InteropError::Unsupported {
        path: path.to_path_buf(),
        key: key.into(),
        expected: expected.into(),
        got: got.describe(),
    };
    if !matches!(args, Py::Dict(_)) {
        return Err(unsupported(
            "(metadata)",
            "a dict of constructor arguments",
            args,
        ));
    }
    let int = |key: &str| -> Result<usize, InteropError> {
        match args.get(key) {
            Some(Py::Int(n)) if *n >= 1 => Ok(*n as usize),
            Some(other) => Err(unsupported(key, "a positive integer", other)),
            None => Err(InteropError::Missing {
                path: path.to_path_buf(),
                key: key.into(),
                available: String::new(),
            }),
        }
    };
    let name = args.get("_name").cloned().unwrap_or(Py::str("FNO"));
    if name != Py::str("FNO") && name != Py::str("TFNO") {
        return Err(unsupported("_name", "\"FNO\" or \"TFNO\"", &name));
    }
    // Options pdekit's FNO has exactly one setting of: (key, accepted values, as said).
    let zero = [Py::Int(0), Py::Float(0.0)];
    let fixed: Vec<(&str, Vec<Py>, &str)> = vec![
        ("positional_embedding", vec![Py::str("grid")], "\"grid\""),
        (
            "non_linearity",
            vec![
                Py::global("torch._C._nn", "gelu"),
                Py::global("torch.nn.functional", "gelu"),
            ],
            "F.gelu",
        ),
        ("norm", vec![Py::None], "None"),
        ("complex_data", vec![Py::Bool(false)], "False"),
        ("use_channel_mlp", vec![Py::Bool(true)], "True"),
        ("channel_mlp_dropout", zero.to_vec(), "0"),
        ("channel_mlp_expansion", vec![Py::Float(0.5)], "0.5"),
        (
            "channel_mlp_skip",
            vec![Py::str("soft-gating")],
            "\"soft-gating\"",
        ),
        ("fno_skip", vec![Py::str("linear")], "\"linear\""),
        ("resolution_scaling_factor", vec![Py::None], "None"),
        ("domain_padding", [&[Py::None][..], &zero].concat(), "None"),
        ("fno_block_precision", vec![Py::str("full")], "\"full\""),
        ("stabilizer", vec![Py::None], "None"),
        ("separable", vec![Py::Bool(false)], "False"),
        ("preactivation", vec![Py::Bool(false)], "False"),
        (
            "lifting_channel_ratio",
            vec![Py::Int(2), Py::Float(2.0)],
            "2",
        ),
        (
            "projection_channel_ratio",
            vec![Py::Int(2), Py::Float(2.0)],
            "2",
        ),
    ];
    for (key, accepted, said) in fixed {
        if let Some(v) = args.get(key) {
            if !accepted.contains(v) {
                return Err(unsupported(key, said, v));
            }
        }
    }
    let n_modes = match args.get("n_modes") {
        Some(Py::Tuple(v) | Py::List(v)) if (1..=3).contains(&v.len()) => v.clone(),
        Some(other) => return Err(unsupported("n_modes", "1 to 3 mode counts", other)),
        None => {
            return Err(InteropError::Missing {
                path: path.to_path_buf(),
                key: "n_modes".into(),
                available: String::new(),
            })
        }
    };
    if let Some(max) = args.get("max_n_modes") {
        if *max != Py::None
            && *max != Py::Tuple(n_modes.clone())
            && *max != Py::List(n_modes.clone())
        {
            return Err(unsupported("max_n_modes", "None or equal to n_modes", max));
        }
    }
    let d = n_modes.len();
    let mut modes = Vec::with_capacity(d);
    for (a, n) in n_modes.iter().enumerate() {
        let Py::Int(n) = *n else {
            return Err(unsupported(
                "n_modes",
                "integers",
                &Py::Tuple(n_modes.clone()),
            ));
        };
        if a + 1 == d {
            modes.push((n.max(0) as usize) / 2 + 1);
        } else if n >= 2 && n % 2 == 0 {
            modes.push(n as usize / 2);
        } else {
            return Err(unsupported(
                "n_modes",
                "even counts on every axis but the last (pdekit keeps ±m)",
                &Py::Tuple(n_modes.clone()),
            ));
        }
    }
    Ok(FnoSpec {
        in_channels: int("in_channels")?,
        out_channels: int("out_channels")?,
        width: int("hidden_channels")?,
        modes,
        layers: int("n_layers")?,
        frame: GridFrame::default(),
        factorization: factorization(args, path, state)?,
        block: BlockStyle::Neuraloperator,
        seed: 0,
    })
}

/// The spectral weights' storage: dense, or Tucker or CP with the ranks of the first layer's
/// tensors (tensorly rounds a fractional `rank` itself, so the tensors, not the argument, say
/// what it built).
fn factorization(args: &Py, path: &Path, state: &TorchFile) -> Result<Factorization, InteropError> {
    let value = args.get("factorization").cloned().unwrap_or(Py::None);
    let kind = match &value {
        Py::None => return Ok(Factorization::Dense),
        Py::Str(k) => k.to_lowercase(),
        _ => String::new(),
    };
    let conv = "fno_blocks.convs.0.weight";
    let missing = |key: String| InteropError::Missing {
        path: state.path().to_path_buf(),
        key,
        available: String::new(),
    };
    let shape_of = |key: &str| match state.object.get(key) {
        Some(Py::Tensor(t)) => Some(t.shape.clone()),
        _ => None,
    };
    match kind.as_str() {
        "dense" => Ok(Factorization::Dense),
        "tucker" => {
            let core =
                shape_of(&format!("{conv}.core")).ok_or_else(|| missing(format!("{conv}.core")))?;
            // tensorly's (in, out, modes…) to pdekit's [modes…, in, out].
            let n = core.len();
            let mut ranks = vec![0; n];
            for (k, a) in tucker_axes(n).enumerate() {
                ranks[a] = core[k];
            }
            Ok(Factorization::Tucker(Rank::Explicit(ranks)))
        }
        "cp" => {
            let w = shape_of(&format!("{conv}.weights"))
                .ok_or_else(|| missing(format!("{conv}.weights")))?;
            Ok(Factorization::Cp(Rank::Explicit(vec![w
                .first()
                .copied()
                .unwrap_or(0)])))
        }
        _ => Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            key: "factorization".into(),
            expected: "None (dense), \"Tucker\" or \"CP\"".into(),
            got: value.describe(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_reordering_is_neuraloperators_fft_shift() {
        // modes [2, 2], one channel: pdekit's axis-0 order is frequencies 0, 1, −2, −1 and
        // neuraloperator's −2, −1, 0, 1.
        let mut pairs = Vec::new();
        for_each_mode(&[2, 2], 1, |p, t| pairs.push((p, t)));
        let kx = |flat: usize| flat / 2;
        for (p, t) in pairs {
            assert_eq!(p % 2, t % 2, "the last axis keeps its order");
            assert_eq!(kx(t), (kx(p) + 2) % 4);
        }
        assert_eq!(neuralop_modes(&[12, 12]), vec![24, 22]);
    }
}
