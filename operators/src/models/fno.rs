//! The Fourier neural operator, built as neuraloperator builds it:
//!
//! ```text
//! x ─ grid embedding ─ lifting MLP ─ [FNO block] × L ─ projection MLP ─ y
//! FNO block:  h = SpectralConv(x) + LinearSkip(x)
//!             z = ChannelMLP(GELU(h)) + SoftGate(x)
//!             out = GELU(z)   (not after the last block)
//! ```
//!
//! The grid coordinates are appended to the input channels. The lifting and projection MLPs are
//! two pointwise layers with a GELU between (hidden width 2 × `width`); the block's channel MLP
//! has hidden width `width / 2`. With a Tucker or CP [`Factorization`] of the spectral weights
//! this is the TFNO (Kossaifi et al., 2023).
//!
//! neuraloperator 2.x differs in two places: its spectral convolution adds a bias, and its last
//! block skips the GELU on `h` too. [`BlockStyle::Neuraloperator`] builds its block exactly (so a
//! model can be exported to it and imported from it); the default [`BlockStyle::Pdekit`] keeps
//! the block every checkpoint before it was trained with. Dropping the last GELU made no
//! measurable difference to zero-shot super-resolution (1.92× against 1.88× on 33² → 65² Darcy).

use super::{Io, Section, Spec};
use crate::layers::compose::{
    channel_mlp, prefixed, ChannelMlp, DomainPadding, Embedding, GridEmbedding, PaddingMode,
    Sequential, SoftGating,
};
use crate::layers::factorized::{Factorization, Rank};
use crate::layers::linear::{gelu_backward, gelu_in_place, PointwiseLinear};
use crate::layers::spectral::kept_shape;
use crate::layers::spectral::SpectralConv;
use crate::layers::{Layer, Param};
use crate::param::{per_axis, require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};

/// Which FNO block a model uses (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum BlockStyle {
    /// GELU on `h` in every block, no spectral bias: pdekit's block since the first checkpoint.
    #[default]
    Pdekit,
    /// neuraloperator 2.x's block: a bias on the spectral convolution, and no GELU on `h` in the
    /// last block. Dense spectral weights also start as neuraloperator's do (complex normal, std
    /// `√(2 / (c_in + c_out))`), not as the FNO paper's code.
    Neuraloperator,
}

impl BlockStyle {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What an FNO block keeps for its backward pass: the input, and `GELU'` at `h` and `z` where a
/// GELU is applied.
struct BlockSaved<T> {
    x: Tensor<T>,
    h_slope: Option<Tensor<T>>,
    z_slope: Option<Tensor<T>>,
}

/// One FNO block (see the module docs). It runs its parts itself rather than as layers, so what
/// backward needs is kept once and the sums are formed in place.
pub struct FnoBlock<T: Real> {
    conv: SpectralConv<T>,
    skip: PointwiseLinear<T>,
    mlp: ChannelMlp<T>,
    gate: SoftGating<T>,
    /// The spectral convolution's bias (per output channel) and its gradient
    /// ([`BlockStyle::Neuraloperator`] only).
    bias: Option<(Vec<T>, Vec<T>)>,
    last: bool,
    style: BlockStyle,
    saved: Option<BlockSaved<T>>,
}

impl<T: Real> FnoBlock<T> {
    pub fn new(
        width: usize,
        modes: &[usize],
        factorization: &Factorization,
        style: BlockStyle,
        last: bool,
        seed: u64,
    ) -> Result<Self, NnError> {
        let mut conv = SpectralConv::with_factorization(width, width, modes, factorization, seed)?;
        if style == BlockStyle::Neuraloperator && *factorization == Factorization::Dense {
            // neuraloperator's initialisation, std √(2 / (c_in + c_out)).
            conv.init_complex_normal((1.0 / width as f64).sqrt(), seed);
        }
        Ok(Self {
            conv,
            skip: PointwiseLinear::new(width, width, false, seed + 1),
            mlp: channel_mlp(width, (width / 2).max(1), width, seed + 2),
            gate: SoftGating::new(width),
            bias: (style == BlockStyle::Neuraloperator)
                .then(|| (vec![T::zero(); width], vec![T::zero(); width])),
            last,
            style,
            saved: None,
        })
    }

    /// Whether the GELU on `h` is applied: always in pdekit's block, never in the last block of
    /// neuraloperator's.
    fn gelu_on_h(&self) -> bool {
        !(self.last && self.style == BlockStyle::Neuraloperator)
    }
}

impl<T: Real> Layer<T> for FnoBlock<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.forward_owned(x.clone())
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward_owned(dy.clone())
    }

    fn forward_owned(&mut self, x: Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut h = self.conv.forward(&x)?;
        self.skip.apply_add(&x, &mut h)?;
        if let Some((bias, _)) = &self.bias {
            for row in h.data.chunks_exact_mut(bias.len()) {
                row.iter_mut().zip(bias).for_each(|(v, &b)| *v = *v + b);
            }
        }
        let h_slope = self.gelu_on_h().then(|| gelu_in_place(&mut h));
        let mut z = self.mlp.forward_owned(h)?;
        self.gate.apply_add(&x, &mut z)?;
        let z_slope = (!self.last).then(|| gelu_in_place(&mut z));
        self.saved = Some(BlockSaved {
            x,
            h_slope,
            z_slope,
        });
        Ok(z)
    }

    fn backward_owned(&mut self, mut dz: Tensor<T>) -> Result<Tensor<T>, NnError> {
        let BlockSaved {
            x,
            h_slope,
            z_slope,
        } = self
            .saved
            .take()
            .ok_or(NnError::NoForward { layer: "fno block" })?;
        if let Some(slope) = &z_slope {
            gelu_backward(slope, &mut dz)?;
        }
        let dx = self.gate.backward_with(&x, &dz)?;
        let mut dh = self.mlp.backward(&dz)?;
        if let Some(slope) = &h_slope {
            gelu_backward(slope, &mut dh)?;
        }
        if let Some((_, grad)) = &mut self.bias {
            for row in dh.data.chunks_exact(grad.len()) {
                grad.iter_mut().zip(row).for_each(|(g, &d)| *g = *g + d);
            }
        }
        let mut dx = self.conv.backward_add(&dh, dx)?;
        self.skip.accumulate_grads(&x, &dh)?;
        dx = self.skip.input_grad(&dh, Some(dx))?;
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("conv", self.conv.parameters());
        if let Some((value, grad)) = &mut self.bias {
            out.push(Param {
                name: "conv.bias".into(),
                value,
                grad,
            });
        }
        out.extend(prefixed("skip", self.skip.parameters()));
        out.extend(prefixed("mlp", self.mlp.parameters()));
        out.extend(prefixed("gate", self.gate.parameters()));
        out
    }
}

/// What an FNO is made of: enough to rebuild it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FnoSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub width: usize,
    /// Modes per spatial axis (its length is the dimension).
    pub modes: Vec<usize>,
    pub layers: usize,
    /// The grid coordinates appended to the input, and the zero padding around the blocks.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
    /// How the spectral weights are stored: dense (FNO) or Tucker/CP (TFNO).
    #[cfg_attr(feature = "serde", serde(default))]
    pub factorization: Factorization,
    /// Absent in checkpoints written before the option existed: pdekit's block.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "BlockStyle::is_default")
    )]
    pub block: BlockStyle,
    #[cfg_attr(feature = "serde", serde(default))]
    pub seed: u64,
}

impl Spec for FnoSpec {
    fn dims(&self) -> usize {
        self.modes.len()
    }

    fn channels(&self) -> (usize, usize) {
        (self.in_channels, self.out_channels)
    }

    fn weight_values(&self) -> u128 {
        // Each block's spectral weight is held dense (a factorised one is reconstructed), complex.
        let spectral = super::product(
            crate::layers::spectral::kept_shape(&self.modes)
                .into_iter()
                .chain([self.width, self.width, 2]),
        );
        spectral.saturating_mul(self.layers as u128)
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        require(self.width >= 1, "width", "an integer ≥ 1", self.width)?;
        require(self.layers >= 1, "layers", "an integer ≥ 1", self.layers)?;
        per_axis("modes", &self.modes)?;
        self.frame.validate()?;
        let mut weight = kept_shape(&self.modes);
        weight.extend([self.width, self.width]);
        self.factorization.ranks(&weight).map(|_| ())
    }
}

/// `[train.fno]`: an FNO's architecture. The channel counts come from the data and the seed from
/// `[train]`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FnoSection {
    pub width: usize,
    /// Kept modes per axis (±m on all axes but the last); its length must match the data.
    pub modes: Vec<usize>,
    pub layers: usize,
    /// "pdekit" (the default) or "neuraloperator": neuraloperator 2.x's block exactly, so the
    /// model can be exported with `pdekit export`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub block: BlockStyle,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
}

impl FnoSection {
    fn spec(&self, io: Io, factorization: Factorization) -> FnoSpec {
        FnoSpec {
            in_channels: io.in_channels,
            out_channels: io.out_channels,
            width: self.width,
            modes: self.modes.clone(),
            layers: self.layers,
            frame: self.frame,
            factorization,
            block: self.block,
            seed: io.seed,
        }
    }
}

impl Section for FnoSection {
    type Spec = FnoSpec;

    fn spec(&self, io: Io) -> Result<FnoSpec, InvalidParam> {
        Ok(FnoSection::spec(self, io, Factorization::Dense))
    }
}

/// The two factorisations a TFNO's spectral weights take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum FactorizationKind {
    Tucker,
    Cp,
}

/// `[train.tfno]`: an FNO whose spectral weights are Tucker or CP factorised, sized by `rank` (a
/// fraction of the dense weight's parameters) or explicit `ranks` (Tucker: one per weight axis,
/// modes…, c_in, c_out; CP: one).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TfnoSection {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub fno: FnoSection,
    pub factorization: FactorizationKind,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub rank: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub ranks: Option<Vec<usize>>,
}

impl Section for TfnoSection {
    type Spec = FnoSpec;

    fn spec(&self, io: Io) -> Result<FnoSpec, InvalidParam> {
        let rank = match (self.rank, &self.ranks) {
            (Some(f), None) => Rank::Fraction(f),
            (None, Some(r)) => Rank::Explicit(r.clone()),
            (rank, ranks) => return Err(InvalidParam {
                field: "rank".into(),
                expected:
                    "either `rank` (a fraction in (0, 1] of the dense spectral weights) or `ranks`"
                        .into(),
                got: match (rank, ranks) {
                    (None, None) => "neither".into(),
                    (rank, ranks) => format!("both rank = {rank:?} and ranks = {ranks:?}"),
                },
            }),
        };
        Ok(self.fno.spec(
            io,
            match self.factorization {
                FactorizationKind::Tucker => Factorization::Tucker(rank),
                FactorizationKind::Cp => Factorization::Cp(rank),
            },
        ))
    }
}

/// The FNO (and, with factorised spectral weights, the TFNO).
pub struct Fno<T: Real> {
    pub spec: FnoSpec,
    net: GridOperator<T>,
}

impl<T: Real> Fno<T> {
    pub fn new(spec: FnoSpec) -> Result<Self, NnError> {
        spec.validate().map_err(|param| NnError::Invalid {
            model: "fno",
            param,
        })?;
        let w = spec.width;
        let s = spec.seed.wrapping_mul(1000);
        let mut blocks: Vec<(String, Box<dyn Layer<T>>)> = Vec::new();
        for l in 0..spec.layers {
            blocks.push((
                format!("blocks.{l}"),
                Box::new(FnoBlock::new(
                    w,
                    &spec.modes,
                    &spec.factorization,
                    spec.block,
                    l + 1 == spec.layers,
                    s + 10 * (l as u64 + 1),
                )?),
            ));
        }
        let dims = spec.modes.len();
        let lifting = channel_mlp(
            spec.in_channels + spec.frame.embedding.channels(dims),
            2 * w,
            w,
            s,
        );
        let net = GridOperator::new(
            "fno",
            dims,
            spec.in_channels,
            Box::new(lifting),
            Box::new(Sequential { layers: blocks }),
            channel_mlp(w, 2 * w, spec.out_channels, s + 999),
            spec.frame,
        );
        Ok(Self { spec, net })
    }

    /// Trainable values (complex spectral weights count twice).
    pub fn parameter_count(&mut self) -> usize {
        self.parameters().iter().map(|p| p.value.len()).sum()
    }
}

impl<T: Real> Layer<T> for Fno<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.net.forward(x)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.net.backward(dy)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        self.net.parameters()
    }
}

/// How a grid operator frames its grid: the coordinates it appends to the input, and the zero
/// padding around its blocks. The default is the FNO paper's: linear coordinates, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct GridFrame {
    /// Zero-pad every grid axis by this fraction of its points (0: none), for non-periodic
    /// problems.
    pub domain_padding: f64,
    /// Grid coordinates appended to the input: "linear" (i/n, neuraloperator's) or "periodic"
    /// (sin and cos of 2πi/n; for periodic problems, where it keeps zero-shot super-resolution).
    pub embedding: Embedding,
    /// Where the padding goes: "one-sided" (after the last point; the FNO paper's code) or
    /// "symmetric" (both ends; neuraloperator 2.x).
    #[cfg_attr(feature = "serde", serde(rename = "domain_padding_mode"))]
    pub padding_mode: PaddingMode,
}

impl GridFrame {
    pub fn validate(&self) -> Result<(), InvalidParam> {
        require(
            (0.0..=1.0).contains(&self.domain_padding),
            "domain_padding",
            "a fraction in [0, 1]",
            self.domain_padding,
        )
    }
}

/// The shape every grid operator here shares: grid embedding and lifting, blocks (on a
/// zero-padded grid when `domain_padding > 0`), projection.
pub struct GridOperator<T: Real> {
    name: &'static str,
    dims: usize,
    in_channels: usize,
    front: Sequential<T>,
    blocks: Box<dyn Layer<T>>,
    projection: ChannelMlp<T>,
    padding: Option<DomainPadding>,
    /// The padded grid of the last forward pass.
    padded: Vec<usize>,
}

impl<T: Real> GridOperator<T> {
    /// Parameter names: `embedding`, `lifting.…`, the blocks' own names, `projection.…`.
    pub fn new(
        name: &'static str,
        dims: usize,
        in_channels: usize,
        lifting: Box<dyn Layer<T>>,
        blocks: Box<dyn Layer<T>>,
        projection: ChannelMlp<T>,
        frame: GridFrame,
    ) -> Self {
        let (domain_padding, mode) = (frame.domain_padding, frame.padding_mode);
        let front: Vec<(String, Box<dyn Layer<T>>)> = vec![
            (
                "embedding".into(),
                Box::new(GridEmbedding::new(frame.embedding)),
            ),
            ("lifting".into(), lifting),
        ];
        Self {
            name,
            dims,
            in_channels,
            front: Sequential { layers: front },
            blocks,
            projection,
            padding: (domain_padding > 0.0).then(|| DomainPadding::new(domain_padding, mode)),
            padded: Vec::new(),
        }
    }
}

impl<T: Real> Layer<T> for GridOperator<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let d = self.dims;
        if x.shape.len() != d + 2 || x.channels() != self.in_channels {
            return Err(NnError::Shape {
                layer: self.name,
                expected: format!("[batch, {d} grid axes, {} channels]", self.in_channels),
                got: format!("{:?}", x.shape),
            });
        }
        let mut h = self.front.forward(x)?;
        if let Some(pad) = &mut self.padding {
            h = pad.pad(&h);
            self.padded = h.grid().to_vec();
        }
        h = self.blocks.forward_owned(h)?;
        if let Some(pad) = &self.padding {
            h = pad.crop(&h);
        }
        self.projection.forward_owned(h)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut g = self.projection.backward(dy)?;
        if let Some(pad) = &self.padding {
            g = pad.crop_backward(&g, &self.padded);
        }
        g = self.blocks.backward_owned(g)?;
        if let Some(pad) = &self.padding {
            g = pad.pad_backward(&g);
        }
        self.front.backward(&g)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = self.front.parameters();
        out.extend(self.blocks.parameters());
        out.extend(prefixed("projection", self.projection.parameters()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};

    #[test]
    fn fno_block_and_whole_fno_gradients_match_finite_differences() {
        let mut block = FnoBlock::<f64>::new(
            4,
            &[2, 2],
            &Factorization::Dense,
            BlockStyle::Pdekit,
            false,
            3,
        )
        .unwrap();
        let worst = check(&mut block, &random(&[2, 5, 6, 4], 4));
        assert!(worst < 1e-6, "block: {worst:e}");
        let mut fno = Fno::<f64>::new(FnoSpec {
            in_channels: 1,
            out_channels: 2,
            width: 4,
            modes: vec![3],
            layers: 2,
            frame: GridFrame::default(),
            factorization: Factorization::Dense,
            block: Default::default(),
            seed: 7,
        })
        .unwrap();
        let worst = check(&mut fno, &random(&[2, 8, 1], 5));
        assert!(worst < 1e-6, "fno: {worst:e}");
        // With domain padding in 2-D: 6 × 8 points become 8 × 10 one-sided, 10 × 12 symmetric.
        for padding_mode in [PaddingMode::OneSided, PaddingMode::Symmetric] {
            let mut padded = Fno::<f64>::new(FnoSpec {
                in_channels: 1,
                out_channels: 1,
                width: 3,
                modes: vec![2, 2],
                layers: 1,
                frame: GridFrame {
                    domain_padding: 0.25,
                    padding_mode,
                    ..GridFrame::default()
                },
                factorization: Factorization::Dense,
                block: Default::default(),
                seed: 2,
            })
            .unwrap();
            let worst = check(&mut padded, &random(&[1, 6, 8, 1], 6));
            assert!(worst < 1e-6, "padded fno ({padding_mode:?}): {worst:e}");
        }
        // With the periodic embedding (two coordinate channels per axis).
        let mut periodic = Fno::<f64>::new(FnoSpec {
            in_channels: 2,
            out_channels: 1,
            width: 3,
            modes: vec![2, 2],
            layers: 2,
            frame: GridFrame {
                embedding: Embedding::Periodic,
                ..GridFrame::default()
            },
            factorization: Factorization::Dense,
            block: Default::default(),
            seed: 9,
        })
        .unwrap();
        let worst = check(&mut periodic, &random(&[2, 6, 5, 2], 7));
        assert!(worst < 1e-6, "periodic fno: {worst:e}");
        let names: Vec<String> = fno.parameters().iter().map(|p| p.name.clone()).collect();
        assert!(
            names.contains(&"blocks.1.conv.weight".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"blocks.0.mlp.fc2.bias".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn the_neuraloperator_block_has_a_spectral_bias_and_no_last_gelu_and_its_gradients_check() {
        for last in [false, true] {
            let mut block = FnoBlock::<f64>::new(
                4,
                &[2, 2],
                &Factorization::Dense,
                BlockStyle::Neuraloperator,
                last,
                3,
            )
            .unwrap();
            // A non-zero bias, so its gradient is exercised away from zero.
            for p in block.parameters() {
                if p.name == "conv.bias" {
                    p.value.copy_from_slice(&[0.3, -0.2, 0.1, 0.5]);
                }
            }
            let worst = check(&mut block, &random(&[2, 5, 6, 4], 4));
            assert!(
                worst < 1e-6,
                "neuraloperator block (last = {last}): {worst:e}"
            );
        }
        let spec = |block| FnoSpec {
            in_channels: 1,
            out_channels: 1,
            width: 3,
            modes: vec![2],
            layers: 2,
            frame: GridFrame::default(),
            factorization: Factorization::Dense,
            block,
            seed: 4,
        };
        let mut neural = Fno::<f64>::new(spec(BlockStyle::Neuraloperator)).unwrap();
        let worst = check(&mut neural, &random(&[2, 8, 1], 5));
        assert!(worst < 1e-6, "neuraloperator fno: {worst:e}");
        // One bias of `width` values per block more than pdekit's block, named `conv.bias`.
        let mut plain = Fno::<f64>::new(spec(BlockStyle::Pdekit)).unwrap();
        assert_eq!(neural.parameter_count(), plain.parameter_count() + 2 * 3);
        let names: Vec<String> = neural.parameters().iter().map(|p| p.name.clone()).collect();
        assert!(
            names.contains(&"blocks.1.conv.bias".to_string()),
            "{names:?}"
        );
        // Same weights, zero bias: the two styles differ only by the last block's GELU on h.
        let x = random(&[1, 8, 1], 6);
        let (a, b) = (plain.forward(&x).unwrap(), neural.forward(&x).unwrap());
        assert!(a
            .data
            .iter()
            .zip(&b.data)
            .any(|(p, q)| (p - q).abs() > 1e-9));
    }

    #[test]
    fn the_benchmark_fno_has_the_reference_parameter_count() {
        // neuraloperator's FNO(n_modes=(12, 12), hidden_channels=32, n_layers=4, in 1 + 2
        // coordinates, out 1): 4 × (2·12·24·32·32 + 32·32 + 2 MLP layers + 32 gates) + lifting
        // + projection.
        let mut fno = Fno::<f32>::new(FnoSpec {
            in_channels: 1,
            out_channels: 1,
            width: 32,
            modes: vec![12, 12],
            layers: 4,
            frame: GridFrame::default(),
            factorization: Factorization::Dense,
            block: Default::default(),
            seed: 0,
        })
        .unwrap();
        let spectral = 2 * 24 * 12 * 32 * 32;
        let block = spectral + 32 * 32 + (32 * 16 + 16) + (16 * 32 + 32) + 32;
        let lifting = (3 * 64 + 64) + (64 * 32 + 32);
        let projection = (32 * 64 + 64) + (64 + 1);
        assert_eq!(fno.parameter_count(), 4 * block + lifting + projection);
    }
}
