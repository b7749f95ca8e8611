//! The FactFormer (Li, Shu and Barati Farimani, NeurIPS 2023) and its implicit, weight-shared
//! form, the IFactFormer (Yang et al. 2024):
//!
//! ```text
//! x ─ grid embedding ─ lifting ─ [h ← h + FactAttention(h)] × depth ─ projection MLP ─ y
//! IFactFormer:                   [h ← h + FactAttention(h)/depth] × depth, one shared layer
//! ```
//!
//! [`FactAttention`] attends along each grid axis separately, so a layer costs O(Σ_m S_m²) per
//! channel for its kernels rather than O(N²). With `implicit` the model holds one layer's weights
//! and iterates it: the model exposes only the first layer's parameters, copies them into the
//! others before each forward pass and gathers the others' gradients into the first's after each
//! backward pass (as the F-FNO's weight sharing does).

use super::fno::{GridFrame, GridOperator};
use super::{Io, Section, Spec};
use crate::layers::axial::{FactAttention, FactAttentionShape, Mixing};
use crate::layers::compose::{add_into, channel_mlp, prefixed};
use crate::layers::linear::PointwiseLinear;
use crate::layers::{Layer, Param};
use crate::param::{require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FactFormerSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Grid axes (1 to 3): one axial projection and kernel each.
    pub dims: usize,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub latent: usize,
    pub kernel_multiplier: usize,
    pub variant: Mixing,
    /// One layer's weights iterated `depth` times (IFactFormer).
    pub implicit: bool,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
    #[cfg_attr(feature = "serde", serde(default))]
    pub seed: u64,
}

impl FactFormerSpec {
    fn layer_shape(&self) -> FactAttentionShape {
        FactAttentionShape {
            dims: self.dims,
            width: self.width,
            heads: self.heads,
            dim_head: self.dim_head,
            latent: self.latent,
            kernel_multiplier: self.kernel_multiplier,
            mixing: self.variant,
        }
    }
}

impl Spec for FactFormerSpec {
    fn dims(&self) -> usize {
        self.dims
    }

    fn channels(&self) -> (usize, usize) {
        (self.in_channels, self.out_channels)
    }

    fn weight_values(&self) -> u128 {
        use super::product;
        let (w, d) = (self.width, self.dims);
        let hd = product([self.heads, self.dim_head]);
        let hk = product([self.heads, self.dim_head, self.kernel_multiplier]);
        // Per axis: the projection's three maps and the kernel's queries and keys.
        let axis = product([3, w, w])
            .saturating_add(product([w, self.latent]))
            .saturating_add(hk.saturating_mul(2 * self.latent as u128));
        let merge = match self.variant {
            Mixing::Chained => 0,
            Mixing::Parallel => hd.saturating_mul(hd).saturating_mul(d as u128),
        };
        let layer = hd
            .saturating_mul(2 * w as u128)
            .saturating_add(axis.saturating_mul(d as u128))
            .saturating_add(merge)
            .saturating_add(product([w, w]));
        let layers = if self.implicit { 1 } else { self.depth };
        layer.saturating_mul(layers as u128)
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        require(
            (1..=3).contains(&self.dims),
            "dims",
            "1, 2 or 3 grid axes",
            self.dims,
        )?;
        for (field, v) in [
            ("width", self.width),
            ("depth", self.depth),
            ("heads", self.heads),
            ("dim_head", self.dim_head),
            ("latent", self.latent),
            ("kernel_multiplier", self.kernel_multiplier),
        ] {
            require(v >= 1, field, "an integer ≥ 1", v)?;
        }
        require(
            (self.dim_head * self.kernel_multiplier).is_multiple_of(2),
            "kernel_multiplier",
            "dim_head × kernel_multiplier even (the rotary embedding turns channels in pairs)",
            format!(
                "{} × {} = {}",
                self.dim_head,
                self.kernel_multiplier,
                self.dim_head * self.kernel_multiplier
            ),
        )?;
        self.frame.validate()
    }
}

/// `[train.factformer]`: the FactFormer's architecture.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FactFormerSection {
    /// Grid axes of the data (2 or 3; 1 works too).
    #[cfg_attr(feature = "serde", serde(default = "two"))]
    pub dims: usize,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    /// Value channels per head; `width / heads` when left out.
    #[cfg_attr(feature = "serde", serde(default))]
    pub dim_head: Option<usize>,
    /// Channels of each axis's summary; `width` when left out.
    #[cfg_attr(feature = "serde", serde(default))]
    pub latent: Option<usize>,
    /// Query and key channels per head, in multiples of `dim_head`.
    #[cfg_attr(feature = "serde", serde(default = "two"))]
    pub kernel_multiplier: usize,
    /// "chained" (FactFormer) or "parallel" (the "-m" variant).
    #[cfg_attr(feature = "serde", serde(default))]
    pub variant: Mixing,
    /// One shared layer iterated `depth` times (IFactFormer).
    #[cfg_attr(feature = "serde", serde(default))]
    pub implicit: bool,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub frame: GridFrame,
}

#[cfg(feature = "serde")]
fn two() -> usize {
    2
}

impl Section for FactFormerSection {
    type Spec = FactFormerSpec;

    fn spec(&self, io: Io) -> Result<FactFormerSpec, InvalidParam> {
        let dim_head = match self.dim_head {
            Some(d) => d,
            None => {
                require(
                    self.heads >= 1 && self.width.is_multiple_of(self.heads),
                    "heads",
                    &format!(
                        "a divisor of width ({}), or dim_head set explicitly",
                        self.width
                    ),
                    self.heads,
                )?;
                self.width / self.heads
            }
        };
        Ok(FactFormerSpec {
            in_channels: io.in_channels,
            out_channels: io.out_channels,
            dims: self.dims,
            width: self.width,
            depth: self.depth,
            heads: self.heads,
            dim_head,
            latent: self.latent.unwrap_or(self.width),
            kernel_multiplier: self.kernel_multiplier,
            variant: self.variant,
            implicit: self.implicit,
            frame: self.frame,
            seed: io.seed,
        })
    }
}

/// The residual attention layers, explicit or implicit.
struct FactStack<T: Real> {
    layers: Vec<FactAttention<T>>,
    implicit: bool,
}

impl<T: Real> FactStack<T> {
    /// The residual branch's weight: `1/depth` for the implicit form.
    fn branch_scale(&self) -> T {
        if self.implicit {
            T::one() / T::lit(self.layers.len() as f64)
        } else {
            T::one()
        }
    }

    fn sync_shared(&mut self) {
        if let (true, Some((first, rest))) = (self.implicit, self.layers.split_first_mut()) {
            let source: Vec<Vec<T>> = first
                .parameters()
                .iter()
                .map(|p| p.value.to_vec())
                .collect();
            for layer in rest {
                for (p, v) in layer.parameters().into_iter().zip(&source) {
                    p.value.copy_from_slice(v);
                }
            }
        }
    }

    fn gather_shared_grads(&mut self) {
        if let (true, Some((first, rest))) = (self.implicit, self.layers.split_first_mut()) {
            let mut into = first.parameters();
            for layer in rest {
                for (p, acc) in layer.parameters().into_iter().zip(into.iter_mut()) {
                    for (g, a) in p.grad.iter_mut().zip(acc.grad.iter_mut()) {
                        *a = *a + *g;
                        *g = T::zero();
                    }
                }
            }
        }
    }
}

fn scaled<T: Real>(mut t: Tensor<T>, s: T) -> Tensor<T> {
    if s != T::one() {
        t.data.iter_mut().for_each(|v| *v = *v * s);
    }
    t
}

impl<T: Real> Layer<T> for FactStack<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.forward_owned(x.clone())
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward_owned(dy.clone())
    }

    fn forward_owned(&mut self, mut h: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.sync_shared();
        let s = self.branch_scale();
        for layer in &mut self.layers {
            let mut next = scaled(layer.forward(&h)?, s);
            add_into(&mut next, &h);
            h = next;
        }
        Ok(h)
    }

    fn backward_owned(&mut self, mut g: Tensor<T>) -> Result<Tensor<T>, NnError> {
        let s = self.branch_scale();
        for layer in self.layers.iter_mut().rev() {
            let mut dx = match self.implicit {
                true => layer.backward(&scaled(g.clone(), s))?,
                false => layer.backward(&g)?,
            };
            add_into(&mut dx, &g);
            g = dx;
        }
        self.gather_shared_grads();
        Ok(g)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let shown = if self.implicit { 1 } else { self.layers.len() };
        self.layers
            .iter_mut()
            .take(shown)
            .enumerate()
            .flat_map(|(l, layer)| prefixed(&format!("layers.{l}"), layer.parameters()))
            .collect()
    }
}

/// The FactFormer or IFactFormer.
pub struct FactFormer<T: Real> {
    pub spec: FactFormerSpec,
    net: GridOperator<T>,
}

impl<T: Real> FactFormer<T> {
    pub fn new(spec: FactFormerSpec) -> Result<Self, NnError> {
        spec.validate().map_err(|param| NnError::Invalid {
            model: "factformer",
            param,
        })?;
        let w = spec.width;
        let s = spec.seed.wrapping_mul(1000);
        let layers = (0..spec.depth)
            .map(|l| FactAttention::new(spec.layer_shape(), s + 1000 * (l as u64 + 1)))
            .collect::<Result<Vec<_>, NnError>>()?;
        let lifting = PointwiseLinear::new(
            spec.in_channels + spec.frame.embedding.channels(spec.dims),
            w,
            true,
            s,
        );
        let net = GridOperator::new(
            "factformer",
            spec.dims,
            spec.in_channels,
            Box::new(lifting),
            Box::new(FactStack {
                layers,
                implicit: spec.implicit,
            }),
            channel_mlp(w, 2 * w, spec.out_channels, s + 999),
            spec.frame,
        );
        Ok(Self { spec, net })
    }
}

impl<T: Real> Layer<T> for FactFormer<T> {
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

    fn spec(dims: usize, variant: Mixing, implicit: bool) -> FactFormerSpec {
        FactFormerSpec {
            in_channels: 1,
            out_channels: 2,
            dims,
            width: 4,
            depth: 3,
            heads: 2,
            dim_head: 2,
            latent: 3,
            kernel_multiplier: 2,
            variant,
            implicit,
            frame: GridFrame::default(),
            seed: 5,
        }
    }

    fn count(m: &mut FactFormer<f64>) -> usize {
        m.parameters().iter().map(|p| p.value.len()).sum()
    }

    /// The implicit form's check also checks the sharing: each perturbed weight reaches every
    /// iteration, and the analytic gradient must gather all of them to match.
    #[test]
    fn factformer_gradients_match_finite_differences_in_every_form() {
        for variant in [Mixing::Chained, Mixing::Parallel] {
            for implicit in [false, true] {
                let mut model = FactFormer::<f64>::new(spec(2, variant, implicit)).unwrap();
                let worst = check(&mut model, &random(&[2, 4, 3, 1], 8));
                assert!(worst < 1e-6, "{variant:?}, implicit {implicit}: {worst:e}");
            }
        }
        let mut model = FactFormer::<f64>::new(spec(3, Mixing::Chained, false)).unwrap();
        let worst = check(&mut model, &random(&[1, 3, 2, 3, 1], 9));
        assert!(worst < 1e-6, "3-D: {worst:e}");
    }

    #[test]
    fn the_implicit_model_holds_exactly_one_layers_parameters() {
        let mut explicit = FactFormer::<f64>::new(spec(2, Mixing::Chained, false)).unwrap();
        let mut implicit = FactFormer::<f64>::new(spec(2, Mixing::Chained, true)).unwrap();
        let mut one = FactFormer::<f64>::new(FactFormerSpec {
            depth: 1,
            ..spec(2, Mixing::Chained, false)
        })
        .unwrap();
        let (all, shared, single) = (count(&mut explicit), count(&mut implicit), count(&mut one));
        assert_eq!(shared, single);
        // Three layers against one: the difference is two layers' worth.
        let layer = all - single;
        assert_eq!(layer % 2, 0);
        assert_eq!(single - layer / 2, count_frame(&mut one));
        let names: Vec<String> = implicit
            .parameters()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("layers.0.")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("layers.1.")),
            "{names:?}"
        );
    }

    /// Parameters outside the attention layers: lifting and projection.
    fn count_frame(m: &mut FactFormer<f64>) -> usize {
        m.parameters()
            .iter()
            .filter(|p| !p.name.starts_with("layers."))
            .map(|p| p.value.len())
            .sum()
    }

    #[test]
    fn a_layers_parameter_count_is_the_documented_sum() {
        // width 4, 2 heads × 2 values, latent 3, queries and keys 2 × 4 per head, 2 axes:
        let (w, hd, l, hk, d) = (4, 4, 3, 8, 2);
        let axis = w * w + 2 * w + (w * 2 * w + 2 * w) + (w * l + l) + 2 * l * hk;
        let layer = 2 * w + w * hd + d * axis + hd * w + w * w;
        let mut one = FactFormer::<f64>::new(FactFormerSpec {
            depth: 1,
            ..spec(2, Mixing::Chained, false)
        })
        .unwrap();
        assert_eq!(count(&mut one) - count_frame(&mut one), layer);
        let mut parallel = FactFormer::<f64>::new(FactFormerSpec {
            depth: 1,
            ..spec(2, Mixing::Parallel, false)
        })
        .unwrap();
        assert_eq!(
            count(&mut parallel) - count_frame(&mut parallel),
            layer + d * hd * hd
        );
    }

    #[test]
    fn a_tiny_factformer_overfits_eight_samples_in_both_forms() {
        for (variant, implicit) in [(Mixing::Chained, false), (Mixing::Parallel, true)] {
            let mut m = FactFormer::<f64>::new(FactFormerSpec {
                out_channels: 1,
                width: 8,
                depth: 2,
                heads: 2,
                dim_head: 4,
                latent: 8,
                ..spec(2, variant, implicit)
            })
            .unwrap();
            let (first, last) = crate::models::overfit::first_and_last_error(&mut m, 12);
            assert!(
                last < 0.05 && last < 0.1 * first,
                "{variant:?}, implicit {implicit}: {first} → {last}"
            );
        }
    }
}
