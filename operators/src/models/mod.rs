//! Models built from serialisable specs: [`fno`] (FNO and TFNO), [`mgtfno`], [`ffno`],
//! [`factformer`] (FactFormer and IFactFormer) and [`deeponet`].
//!
//! The `models!` registration at the bottom lists every model once: its config table (a
//! [`Section`], e.g. `[train.fno]`), its spec (what a checkpoint stores) and the model built from
//! it. From that list come [`ModelConfig`], [`ModelSpec`] and [`Model`], so adding a model is its
//! file and one line there.

pub mod deeponet;
pub mod factformer;
pub mod ffno;
pub mod fno;
pub mod gp;
pub mod mgtfno;

use crate::layers::{Layer, Param};
use crate::param::InvalidParam;
use crate::tensor::{NnError, Real, Tensor};

/// What a model takes from the data and the run rather than from its config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

/// A model's spec: enough to rebuild it.
pub trait Spec: Clone + PartialEq + std::fmt::Debug {
    /// Grid axes of the data.
    fn dims(&self) -> usize;
    /// Input and output channels.
    fn channels(&self) -> (usize, usize);
    /// Every field in range; `field` is its key in the model's config table.
    fn validate(&self) -> Result<(), InvalidParam>;
    /// Values in the largest arrays that building the model allocates (a lower bound, saturating),
    /// so a caller can refuse a spec this machine cannot hold before allocating anything.
    fn weight_values(&self) -> u128;
}

/// `Π factors`, saturating.
pub(crate) fn product(factors: impl IntoIterator<Item = usize>) -> u128 {
    factors
        .into_iter()
        .fold(1u128, |p, f| p.saturating_mul(f as u128))
}

/// A model's config table: its architecture, without what comes from the data and the run.
pub trait Section: Clone + PartialEq + std::fmt::Debug {
    type Spec: Spec;
    fn spec(&self, io: Io) -> Result<Self::Spec, InvalidParam>;
}

macro_rules! models {
    ($($(#[$doc:meta])* $variant:ident: $model:ident, $spec:ty, $section:ty, $kind:literal, $name:literal;)*) => {
        /// Enough to rebuild any model, tagged by its kind (what a checkpoint stores).
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(tag = "kind"))]
        pub enum ModelSpec {
            $($(#[$doc])* #[cfg_attr(feature = "serde", serde(rename = $kind))] $variant($spec),)*
        }

        /// Any model's config table, tagged by its kind (`fno = { … }`, i.e. `[train.fno]`).
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub enum ModelConfig {
            $($(#[$doc])* #[cfg_attr(feature = "serde", serde(rename = $kind))] $variant($section),)*
        }

        /// Any model.
        pub enum Model<T: Real> {
            $($variant($model<T>),)*
        }

        impl ModelSpec {
            /// The config kind: `fno`, `tfno`, `ffno`, `deeponet`, …
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)*
                }
            }

            /// The model's usual name: FNO, TFNO, F-FNO, DeepONet, …
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)*
                }
            }

            /// Grid axes of the data.
            pub fn dims(&self) -> usize {
                match self {
                    $(Self::$variant(s) => s.dims(),)*
                }
            }

            pub fn in_channels(&self) -> usize {
                match self {
                    $(Self::$variant(s) => s.channels().0,)*
                }
            }

            pub fn out_channels(&self) -> usize {
                match self {
                    $(Self::$variant(s) => s.channels().1,)*
                }
            }

            /// See [`Spec::weight_values`].
            pub fn weight_values(&self) -> u128 {
                match self {
                    $(Self::$variant(s) => s.weight_values(),)*
                }
            }

            pub fn validate(&self) -> Result<(), NnError> {
                let (model, checked) = match self {
                    $(Self::$variant(s) => ($kind, s.validate()),)*
                };
                checked.map_err(|param| NnError::Invalid { model, param })
            }
        }

        impl ModelConfig {
            /// Every model's kind, the key of its config table.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)*
                }
            }

            /// Reads the config table of the model of kind `kind`.
            #[cfg(feature = "serde")]
            pub fn deserialize_kind<'de, D: serde::Deserializer<'de>>(
                kind: &str,
                d: D,
            ) -> Result<Self, D::Error> {
                use serde::Deserialize;
                match kind {
                    $($kind => <$section>::deserialize(d).map(Self::$variant),)*
                    other => Err(serde::de::Error::unknown_variant(other, Self::KINDS)),
                }
            }

            /// The checked spec for data with these channels; `field` of an error is the key in
            /// the model's table.
            pub fn spec(&self, io: Io) -> Result<ModelSpec, NnError> {
                let spec = match self {
                    $(Self::$variant(s) => s
                        .spec(io)
                        .map(ModelSpec::$variant)
                        .map_err(|param| NnError::Invalid { model: $kind, param })?,)*
                };
                spec.validate()?;
                Ok(spec)
            }
        }

        impl<T: Real> Model<T> {
            pub fn new(spec: ModelSpec) -> Result<Self, NnError> {
                spec.validate()?;
                Ok(match spec {
                    $(ModelSpec::$variant(s) => Model::$variant($model::new(s)?),)*
                })
            }

            pub fn spec(&self) -> ModelSpec {
                match self {
                    $(Model::$variant(m) => ModelSpec::$variant(m.spec.clone()),)*
                }
            }

            fn inner(&mut self) -> &mut dyn Layer<T> {
                match self {
                    $(Model::$variant(m) => m,)*
                }
            }
        }
    };
}

use deeponet::DeepOnet;
use factformer::FactFormer;
use ffno::Ffno;
use fno::Fno;
use mgtfno::MgTfno;

models! {
    Fno: Fno, fno::FnoSpec, fno::FnoSection, "fno", "FNO";
    /// An FNO with Tucker or CP factorised spectral weights.
    Tfno: Fno, fno::FnoSpec, fno::TfnoSection, "tfno", "TFNO";
    /// A TFNO on the patches of a multigrid domain decomposition.
    MgTfno: MgTfno, mgtfno::MgTfnoSpec, mgtfno::MgTfnoSection, "mgtfno", "MG-TFNO";
    Ffno: Ffno, ffno::FfnoSpec, ffno::FfnoSection, "ffno", "F-FNO";
    /// Factorised attention along each grid axis; `implicit` shares one layer (IFactFormer).
    FactFormer: FactFormer, factformer::FactFormerSpec, factformer::FactFormerSection, "factformer", "FactFormer";
    DeepOnet: DeepOnet, deeponet::DeepOnetSpec, deeponet::DeepOnetSection, "deeponet", "DeepONet";
}

impl<T: Real> Model<T> {
    /// Trainable values (complex weights count twice).
    pub fn parameter_count(&mut self) -> usize {
        self.parameters().iter().map(|p| p.value.len()).sum()
    }
}

impl<T: Real> Layer<T> for Model<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.inner().forward(x)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.inner().backward(dy)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        self.inner().parameters()
    }

    fn loss_patches(&self) -> Option<crate::layers::patching::MgPatching> {
        match self {
            Model::MgTfno(m) => m.loss_patches(),
            _ => None,
        }
    }
}

/// What the models' "a tiny model overfits eight samples" tests share.
#[cfg(test)]
pub(crate) mod overfit {
    use crate::layers::gradcheck::random;
    use crate::layers::Layer;
    use crate::tensor::Tensor;
    use crate::train::normalizer::UnitGaussian;
    use crate::train::trainer::{train, Control, Schedule, Split, TrainParams, TrainState};

    /// Eight smooth random fields x on an n × n periodic grid, and y = a shifted, smoothed copy.
    pub fn fields(n: usize) -> (Tensor<f64>, Tensor<f64>) {
        let coef = random(&[8, 3], 11);
        let tau = 2.0 * std::f64::consts::PI / n as f64;
        let field = |b: usize, i: f64, j: f64| {
            let c = &coef.data[3 * b..3 * b + 3];
            c[0] * (tau * i).cos() + c[1] * (tau * j).sin() + c[2] * (tau * (i + j)).cos()
        };
        let (mut x, mut y) = (Tensor::zeros(&[8, n, n, 1]), Tensor::zeros(&[8, n, n, 1]));
        for b in 0..8 {
            for i in 0..n {
                for j in 0..n {
                    let (fi, fj) = (i as f64, j as f64);
                    x.data[(b * n + i) * n + j] = field(b, fi, fj);
                    y.data[(b * n + i) * n + j] =
                        0.5 * field(b, fi + 1.0, fj) + 0.3 * field(b, fi, fj - 1.0) + 0.1;
                }
            }
        }
        (x, y)
    }

    /// Trains `model` on `fields(n)` (80 epochs, batch 4, Adam 1e-2) and returns the first and
    /// last epochs' error on those same samples.
    pub fn first_and_last_error<M: Layer<f64>>(model: &mut M, n: usize) -> (f64, f64) {
        let (x, y) = fields(n);
        let (xn, yn) = (UnitGaussian::fit(&x), UnitGaussian::fit(&y));
        let params = TrainParams {
            epochs: 80,
            batch_size: 4,
            learning_rate: 1e-2,
            schedule: Schedule::Constant,
            ..TrainParams::default()
        };
        let split = Split { x: &x, y: &y };
        let state = train(
            model,
            (&xn, &yn),
            (&split, &split),
            &params,
            TrainState::new(&params),
            &mut |_| Control::Continue,
            |_, _, _| Control::Continue,
        )
        .unwrap();
        let last = state.history.last().unwrap().test_l2;
        (state.history[0].test_l2, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::axial::Mixing;
    use crate::layers::factorized::{Factorization, Rank};
    use crate::models::deeponet::{DeepOnetSection, DeepOnetSpec};
    use crate::models::factformer::FactFormerSpec;
    use crate::models::ffno::FfnoSpec;
    use crate::models::fno::{FnoSpec, GridFrame};

    fn fno(modes: Vec<usize>, factorization: Factorization) -> FnoSpec {
        FnoSpec {
            in_channels: 2,
            out_channels: 1,
            width: 6,
            modes,
            layers: 3,
            frame: GridFrame::default(),
            factorization,
            block: Default::default(),
            seed: 1,
        }
    }

    #[test]
    fn weight_values_bound_what_a_model_holds_and_saturate_on_crafted_specs() {
        let ffno = FfnoSpec {
            in_channels: 1,
            out_channels: 2,
            width: 5,
            modes: vec![4, 3],
            layers: 2,
            ff_expansion: 2,
            share_weights: false,
            frame: GridFrame::default(),
            seed: 2,
        };
        let deeponet = DeepOnetSpec {
            in_channels: 1,
            out_channels: 1,
            section: DeepOnetSection {
                sensors: vec![6, 5],
                branch: vec![8, 7],
                trunk: vec![9],
                basis: 4,
            },
            seed: 3,
        };
        let factformer = FactFormerSpec {
            in_channels: 1,
            out_channels: 1,
            dims: 2,
            width: 8,
            depth: 2,
            heads: 2,
            dim_head: 4,
            latent: 8,
            kernel_multiplier: 2,
            variant: Mixing::Parallel,
            implicit: false,
            frame: GridFrame::default(),
            seed: 4,
        };
        // The bound covers most of the parameters: the rest are biases and small linear maps.
        for spec in [
            ModelSpec::Fno(fno(vec![4, 3], Factorization::Dense)),
            ModelSpec::Fno(fno(vec![5], Factorization::Dense)),
            ModelSpec::Ffno(ffno),
            ModelSpec::DeepOnet(deeponet),
            ModelSpec::FactFormer(factformer),
        ] {
            let bound = spec.weight_values();
            let held = Model::<f32>::new(spec.clone()).unwrap().parameter_count() as u128;
            assert!(
                bound <= held && held < 2 * bound,
                "{spec:?}: {bound} vs {held}"
            );
        }
        // A factorised FNO holds its reconstructed dense weight too.
        let tucker = fno(vec![4, 3], Factorization::Tucker(Rank::Fraction(0.2)));
        assert_eq!(
            tucker.weight_values(),
            fno(vec![4, 3], Factorization::Dense).weight_values()
        );
        let crafted = ModelSpec::Fno(fno(vec![usize::MAX; 4], Factorization::Dense));
        assert_eq!(crafted.weight_values(), u128::MAX);
    }
}
