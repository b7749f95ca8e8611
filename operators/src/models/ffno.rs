//! The factorised FNO (F-FNO, Tran et al. 2023):
//!
//! ```text
//! x ─ grid embedding ─ lifting ─ [F-FNO block] × L ─ projection MLP ─ y
//! F-FNO block:  x + FF(K(x)),  K = Σ_axes 1-D spectral conv along the axis,
//!               FF = Linear(width → e·width) ─ GELU ─ Linear(e·width → width)
//! ```
//!
//! The residual around every block is what lets F-FNO stacks go deep. With `share_weights` every
//! block uses the same spectral weights (the paper's weight-sharing variant): the model exposes
//! only the first block's, copies them into the others before each forward pass and gathers the
//! others' gradients into the first's after each backward pass.

use super::fno::{GridFrame, GridOperator};
use super::{Io, Section, Spec};
use crate::layers::axes::AxisSpectralConv;
use crate::layers::compose::{add_into, channel_mlp, prefixed, ChannelMlp};
use crate::layers::linear::PointwiseLinear;
use crate::layers::{Layer, Param};
use crate::param::{per_axis, require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FfnoSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub width: usize,
    /// Modes along each grid axis (its length is the dimension).
    pub modes: Vec<usize>,
    pub layers: usize,
    /// Hidden width of the feed-forward part, as a multiple of `width`.
    pub ff_expansion: usize,
    #[cfg_attr(feature = "serde", serde(default))]
    pub share_weights: bool,
    /// The grid coordinates appended to the input, and the zero padding around the blocks.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
    #[cfg_attr(feature = "serde", serde(default))]
    pub seed: u64,
}

impl Spec for FfnoSpec {
    fn dims(&self) -> usize {
        self.modes.len()
    }

    fn channels(&self) -> (usize, usize) {
        (self.in_channels, self.out_channels)
    }

    fn weight_values(&self) -> u128 {
        // Each block: a complex width × width weight per mode of each axis, and its feed-forward.
        let per_block = self.modes.iter().fold(0u128, |sum, &m| {
            sum.saturating_add(super::product([m, self.width, self.width, 2]))
        });
        let ff = super::product([2, self.ff_expansion, self.width, self.width]);
        per_block
            .saturating_add(ff)
            .saturating_mul(self.layers as u128)
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        require(self.width >= 1, "width", "an integer ≥ 1", self.width)?;
        require(self.layers >= 1, "layers", "an integer ≥ 1", self.layers)?;
        require(
            self.ff_expansion >= 1,
            "ff_expansion",
            "an integer ≥ 1",
            self.ff_expansion,
        )?;
        per_axis("modes", &self.modes)?;
        self.frame.validate()
    }
}

/// `[train.ffno]`: the F-FNO's architecture (per-axis spectral convolutions, residual blocks).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FfnoSection {
    pub width: usize,
    pub modes: Vec<usize>,
    pub layers: usize,
    /// Hidden width of each block's feed-forward part, in multiples of `width`.
    #[cfg_attr(feature = "serde", serde(default = "four"))]
    pub ff_expansion: usize,
    /// One set of spectral weights for all blocks.
    #[cfg_attr(feature = "serde", serde(default))]
    pub share_weights: bool,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
}

#[cfg(feature = "serde")]
fn four() -> usize {
    4
}

impl Section for FfnoSection {
    type Spec = FfnoSpec;

    fn spec(&self, io: Io) -> Result<FfnoSpec, InvalidParam> {
        Ok(FfnoSpec {
            in_channels: io.in_channels,
            out_channels: io.out_channels,
            width: self.width,
            modes: self.modes.clone(),
            layers: self.layers,
            ff_expansion: self.ff_expansion,
            share_weights: self.share_weights,
            frame: self.frame,
            seed: io.seed,
        })
    }
}

struct FfnoBlock<T: Real> {
    conv: AxisSpectralConv<T>,
    ff: ChannelMlp<T>,
}

/// The F-FNO's blocks, with optional weight sharing.
struct FfnoStack<T: Real> {
    blocks: Vec<FfnoBlock<T>>,
    share: bool,
}

impl<T: Real> FfnoStack<T> {
    fn sync_shared(&mut self) {
        if let Some((first, rest)) = self.blocks.split_first_mut() {
            if self.share {
                rest.iter_mut()
                    .for_each(|b| b.conv.copy_weights_from(&first.conv));
            }
        }
    }
}

impl<T: Real> Layer<T> for FfnoStack<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.forward_owned(x.clone())
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward_owned(dy.clone())
    }

    fn forward_owned(&mut self, mut h: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.sync_shared();
        for b in &mut self.blocks {
            let mut next = b.ff.forward_owned(b.conv.forward(&h)?)?;
            add_into(&mut next, &h);
            h = next;
        }
        Ok(h)
    }

    fn backward_owned(&mut self, mut g: Tensor<T>) -> Result<Tensor<T>, NnError> {
        for b in self.blocks.iter_mut().rev() {
            let mut dx = b.conv.backward(&b.ff.backward(&g)?)?;
            add_into(&mut dx, &g);
            g = dx;
        }
        if self.share {
            let (first, rest) = self.blocks.split_first_mut().expect("a block");
            rest.iter_mut()
                .for_each(|b| b.conv.move_grads_into(&mut first.conv));
        }
        Ok(g)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let share = self.share;
        let mut out = Vec::new();
        for (l, b) in self.blocks.iter_mut().enumerate() {
            if l == 0 || !share {
                out.extend(prefixed(&format!("blocks.{l}.conv"), b.conv.parameters()));
            }
            out.extend(prefixed(&format!("blocks.{l}.ff"), b.ff.parameters()));
        }
        out
    }
}

/// The F-FNO.
pub struct Ffno<T: Real> {
    pub spec: FfnoSpec,
    net: GridOperator<T>,
}

impl<T: Real> Ffno<T> {
    pub fn new(spec: FfnoSpec) -> Result<Self, NnError> {
        spec.validate().map_err(|param| NnError::Invalid {
            model: "ffno",
            param,
        })?;
        let w = spec.width;
        let s = spec.seed.wrapping_mul(1000);
        let blocks = (0..spec.layers)
            .map(|l| {
                let seed = s + 10 * (l as u64 + 1);
                Ok(FfnoBlock {
                    conv: AxisSpectralConv::new(w, w, &spec.modes, seed)?,
                    ff: channel_mlp(w, spec.ff_expansion * w, w, seed + 5),
                })
            })
            .collect::<Result<Vec<_>, NnError>>()?;
        let dims = spec.modes.len();
        let lifting = PointwiseLinear::new(
            spec.in_channels + spec.frame.embedding.channels(dims),
            w,
            true,
            s,
        );
        let net = GridOperator::new(
            "ffno",
            dims,
            spec.in_channels,
            Box::new(lifting),
            Box::new(FfnoStack {
                blocks,
                share: spec.share_weights,
            }),
            channel_mlp(w, 2 * w, spec.out_channels, s + 999),
            spec.frame,
        );
        Ok(Self { spec, net })
    }
}

impl<T: Real> Layer<T> for Ffno<T> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};

    fn spec(share: bool) -> FfnoSpec {
        FfnoSpec {
            in_channels: 1,
            out_channels: 2,
            width: 3,
            modes: vec![2, 2],
            layers: 3,
            ff_expansion: 2,
            share_weights: share,
            frame: GridFrame::default(),
            seed: 4,
        }
    }

    #[test]
    fn ffno_gradients_match_finite_differences_with_and_without_shared_weights() {
        for share in [false, true] {
            let mut model = Ffno::<f64>::new(spec(share)).unwrap();
            let worst = check(&mut model, &random(&[2, 5, 6, 1], 8));
            assert!(worst < 1e-6, "share {share}: {worst:e}");
        }
    }

    #[test]
    fn shared_weights_count_once() {
        let mut own = Ffno::<f64>::new(spec(false)).unwrap();
        let mut shared = Ffno::<f64>::new(spec(true)).unwrap();
        let count =
            |m: &mut Ffno<f64>| -> usize { m.parameters().iter().map(|p| p.value.len()).sum() };
        // Per block: two axes × 2 modes × 3 × 3 complex weights.
        let conv = 2 * 2 * 3 * 3 * 2;
        assert_eq!(count(&mut own) - count(&mut shared), 2 * conv);
        let names: Vec<String> = shared.parameters().iter().map(|p| p.name.clone()).collect();
        assert!(
            names.contains(&"blocks.0.conv.axis1.weight".to_string()),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("blocks.1.conv")),
            "{names:?}"
        );
    }
}
