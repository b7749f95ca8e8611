//! Models built from serialisable specs: [`fno`] (FNO and TFNO), [`ffno`] and [`deeponet`], and
//! [`Model`], which holds any of them.

pub mod deeponet;
pub mod ffno;
pub mod fno;

use crate::layers::factorized::Factorization;
use crate::layers::{Layer, Param};
use crate::tensor::{NnError, Real, Tensor};
use deeponet::{DeepOnet, DeepOnetSpec};
use ffno::{Ffno, FfnoSpec};
use fno::{Fno, FnoSpec};

/// Enough to rebuild any model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// FNO, or TFNO when its spectral weights are factorised.
    Fno(FnoSpec),
    Ffno(FfnoSpec),
    DeepOnet(DeepOnetSpec),
}

impl ModelSpec {
    /// `fno`, `tfno`, `ffno` or `deeponet`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Fno(s) if s.factorization == Factorization::Dense => "fno",
            ModelSpec::Fno(_) => "tfno",
            ModelSpec::Ffno(_) => "ffno",
            ModelSpec::DeepOnet(_) => "deeponet",
        }
    }

    /// The model's usual name: FNO, TFNO, F-FNO or DeepONet.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Fno(s) if s.factorization == Factorization::Dense => "FNO",
            ModelSpec::Fno(_) => "TFNO",
            ModelSpec::Ffno(_) => "F-FNO",
            ModelSpec::DeepOnet(_) => "DeepONet",
        }
    }

    /// Grid axes of the data.
    pub fn dims(&self) -> usize {
        match self {
            ModelSpec::Fno(s) => s.modes.len(),
            ModelSpec::Ffno(s) => s.modes.len(),
            ModelSpec::DeepOnet(s) => s.sensors.len(),
        }
    }

    pub fn in_channels(&self) -> usize {
        match self {
            ModelSpec::Fno(s) => s.in_channels,
            ModelSpec::Ffno(s) => s.in_channels,
            ModelSpec::DeepOnet(s) => s.in_channels,
        }
    }

    pub fn out_channels(&self) -> usize {
        match self {
            ModelSpec::Fno(s) => s.out_channels,
            ModelSpec::Ffno(s) => s.out_channels,
            ModelSpec::DeepOnet(s) => s.out_channels,
        }
    }
}

/// Any model.
pub enum Model<T: Real> {
    Fno(Fno<T>),
    Ffno(Ffno<T>),
    DeepOnet(DeepOnet<T>),
}

impl<T: Real> Model<T> {
    pub fn new(spec: ModelSpec) -> Result<Self, NnError> {
        Ok(match spec {
            ModelSpec::Fno(s) => Model::Fno(Fno::new(s)?),
            ModelSpec::Ffno(s) => Model::Ffno(Ffno::new(s)?),
            ModelSpec::DeepOnet(s) => Model::DeepOnet(DeepOnet::new(s)?),
        })
    }

    pub fn spec(&self) -> ModelSpec {
        match self {
            Model::Fno(m) => ModelSpec::Fno(m.spec.clone()),
            Model::Ffno(m) => ModelSpec::Ffno(m.spec.clone()),
            Model::DeepOnet(m) => ModelSpec::DeepOnet(m.spec.clone()),
        }
    }

    /// Trainable values (complex weights count twice).
    pub fn parameter_count(&mut self) -> usize {
        self.parameters().iter().map(|p| p.value.len()).sum()
    }

    fn inner(&mut self) -> &mut dyn Layer<T> {
        match self {
            Model::Fno(m) => m,
            Model::Ffno(m) => m,
            Model::DeepOnet(m) => m,
        }
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
}
