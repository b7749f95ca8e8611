//! Layers with an explicit forward pass (which keeps what the backward pass needs) and backward
//! pass (which returns the input gradient and accumulates parameter gradients). There is no
//! general autodiff engine: models are compositions of these layers, and every layer has a
//! finite-difference gradient test in f64.
//!
//! - [`linear`]: pointwise linear maps (a matrix product over all grid points) and GELU.
//! - [`spectral`]: spectral convolution in 1-D, 2-D and 3-D by real FFTs.
//! - [`axes`]: the F-FNO's per-axis spectral convolution.
//! - [`factorized`]: Tucker and CP spectral weights (TFNO).
//! - [`compose`]: sequences, channel MLPs, soft gating and the grid-coordinate embedding.
//! - [`norm`]: LayerNorm and InstanceNorm.
//! - [`axial`]: the FactFormer's factorised attention (axial projections, rotary embedding,
//!   axial kernels applied chained or in parallel).
//! - [`patching`]: MG-TFNO's multigrid domain decomposition (patch, stitch and their adjoints).

pub mod axes;
pub mod axial;
pub mod compose;
pub mod factorized;
pub mod linear;
pub mod norm;
pub mod patching;
pub mod spectral;

use crate::tensor::{NnError, Real, Tensor};

/// A parameter array and its accumulated gradient.
pub struct Param<'a, T> {
    pub name: String,
    pub value: &'a mut [T],
    pub grad: &'a mut [T],
}

/// A layer: `forward` keeps what `backward` needs; `backward` returns the input gradient and adds
/// the parameter gradients to those already accumulated.
pub trait Layer<T: Real>: Send {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError>;
    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError>;
    fn parameters(&mut self) -> Vec<Param<'_, T>>;
    /// [`Layer::forward`] on a tensor the caller gives up: a layer that keeps its input
    /// overrides this to keep `x` itself rather than a copy.
    fn forward_owned(&mut self, x: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.forward(&x)
    }
    /// [`Layer::backward`] on a gradient the caller gives up, for layers that would copy it.
    fn backward_owned(&mut self, dy: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward(&dy)
    }
    /// The decomposition the training loss is taken over instead of whole samples (an MG-TFNO
    /// trained without stitching); `None` for every other layer.
    fn loss_patches(&self) -> Option<patching::MgPatching> {
        None
    }
    fn zero_grad(&mut self) {
        for p in self.parameters() {
            p.grad.iter_mut().for_each(|g| *g = T::zero());
        }
    }
}

#[cfg(test)]
pub(crate) mod gradcheck {
    use super::*;
    use rand::{Rng, SeedableRng};

    pub fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap()
    }

    /// Checks a layer's input and parameter gradients against central differences of
    /// `L = Σ w ⊙ layer(x)` for a random `w`, on every entry. Returns the worst relative error.
    pub fn check(layer: &mut dyn Layer<f64>, x: &Tensor<f64>) -> f64 {
        let y = layer.forward(x).unwrap();
        let w = random(&y.shape, 99);
        let loss = |layer: &mut dyn Layer<f64>, x: &Tensor<f64>| -> f64 {
            let y = layer.forward(x).unwrap();
            y.data.iter().zip(&w.data).map(|(a, b)| a * b).sum()
        };
        layer.zero_grad();
        layer.forward(x).unwrap();
        let dx = layer.backward(&w).unwrap();
        let eps = 1e-6;
        let mut worst: f64 = 0.0;
        // Relative, with a floor: central differences of an O(10) loss carry ~1e-8 of rounding.
        let scale = |a: f64, b: f64| (a - b).abs() / (a.abs().max(b.abs()).max(1e-2));
        let mut xp = x.clone();
        for i in 0..x.data.len() {
            xp.data[i] = x.data[i] + eps;
            let lp = loss(layer, &xp);
            xp.data[i] = x.data[i] - eps;
            let lm = loss(layer, &xp);
            xp.data[i] = x.data[i];
            worst = worst.max(scale((lp - lm) / (2.0 * eps), dx.data[i]));
        }
        let grads: Vec<Vec<f64>> = layer.parameters().iter().map(|p| p.grad.to_vec()).collect();
        for (pi, g) in grads.iter().enumerate() {
            for (i, &gi) in g.iter().enumerate() {
                let orig = layer.parameters()[pi].value[i];
                layer.parameters()[pi].value[i] = orig + eps;
                let lp = loss(layer, x);
                layer.parameters()[pi].value[i] = orig - eps;
                let lm = loss(layer, x);
                layer.parameters()[pi].value[i] = orig;
                worst = worst.max(scale((lp - lm) / (2.0 * eps), gi));
            }
        }
        worst
    }
}
