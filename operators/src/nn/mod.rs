//! Building blocks of the neural operators: channels-last tensors and layers with an explicit
//! forward pass (which keeps what the backward pass needs) and backward pass (which returns the
//! input gradient and accumulates parameter gradients).
//!
//! Everything is generic over the scalar ([`Real`]): models train in `f32`, and the tests check
//! every layer's gradients against finite differences in `f64`.
//!
//! - [`linear`]: pointwise linear maps (a matrix product over all grid points) and GELU.
//! - [`spectral`]: spectral convolution in 1-D, 2-D and 3-D by real FFTs.

pub mod fno;
pub mod linear;
pub mod optim;
pub mod spectral;

use thiserror::Error;

/// The scalars layers compute in.
pub trait Real:
    rustfft::FftNum + num_traits::Float + Default + Send + Sync + std::iter::Sum + 'static
{
    /// `C ← α·A·B + β·C` for row-major `A` (m × k), `B` (k × n) and `C` (m × n), with the given
    /// row and column strides (so transposes are free).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        a_strides: (isize, isize),
        b: &[Self],
        b_strides: (isize, isize),
        beta: Self,
        c: &mut [Self],
        c_strides: (isize, isize),
    );
    fn erf(self) -> Self;
    fn lit(v: f64) -> Self;
}

macro_rules! real_impl {
    ($t:ty, $gemm:path, $erf:path) => {
        impl Real for $t {
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: &[Self],
                a_strides: (isize, isize),
                b: &[Self],
                b_strides: (isize, isize),
                beta: Self,
                c: &mut [Self],
                c_strides: (isize, isize),
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                // Bounds: the largest index each operand is read at.
                let last = |rows: usize, cols: usize, (rs, cs): (isize, isize)| {
                    (rows.saturating_sub(1) as isize * rs + cols.saturating_sub(1) as isize * cs)
                        as usize
                };
                assert!(
                    k == 0 || last(m, k, a_strides) < a.len(),
                    "gemm: A too short"
                );
                assert!(
                    k == 0 || last(k, n, b_strides) < b.len(),
                    "gemm: B too short"
                );
                assert!(last(m, n, c_strides) < c.len(), "gemm: C too short");
                // SAFETY: every index the kernel touches is within the slices (checked above),
                // and `c` does not alias `a` or `b` (distinct borrows).
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        alpha,
                        a.as_ptr(),
                        a_strides.0,
                        a_strides.1,
                        b.as_ptr(),
                        b_strides.0,
                        b_strides.1,
                        beta,
                        c.as_mut_ptr(),
                        c_strides.0,
                        c_strides.1,
                    );
                }
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn lit(v: f64) -> Self {
                v as $t
            }
        }
    };
}

real_impl!(f32, matrixmultiply::sgemm, libm::erff);
real_impl!(f64, matrixmultiply::dgemm, libm::erf);

/// A dense tensor, row-major, channels last: `[batch, n_1, …, n_d, channels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![T::zero(); shape.iter().product()],
        }
    }

    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self, NnError> {
        let want: usize = shape.iter().product();
        if data.len() != want {
            return Err(NnError::Shape {
                layer: "tensor",
                expected: format!("{want} values for shape {shape:?}"),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            data,
        })
    }

    /// Channels (the last axis).
    pub fn channels(&self) -> usize {
        *self.shape.last().unwrap_or(&0)
    }

    /// Grid points over the whole batch (everything but the channel axis).
    pub fn points(&self) -> usize {
        self.data.len() / self.channels().max(1)
    }

    /// The spatial axes `[n_1, …, n_d]`.
    pub fn grid(&self) -> &[usize] {
        &self.shape[1..self.shape.len() - 1]
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum NnError {
    #[error("{layer}: expected {expected}, got {got}")]
    Shape {
        layer: &'static str,
        expected: String,
        got: String,
    },
    #[error("{layer}: backward called before forward")]
    NoForward { layer: &'static str },
    #[error("{layer}: {message}")]
    BadSpec {
        layer: &'static str,
        message: String,
    },
}

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
