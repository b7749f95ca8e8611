//! The F-FNO's factorised Fourier layer: a 1-D spectral convolution along each grid axis, summed,
//! `K(x) = Σ_a IFFT_a(W_a · FFT_a(x))` (Tran et al., "Factorized Fourier Neural Operators", 2023).
//! Each axis' convolution is a [`SpectralConv`] on the tensor with that axis moved next to the
//! channels and the other axes folded into the batch.

use super::compose::{add_into, prefixed};
use super::spectral::SpectralConv;
use super::{Layer, Param};
use crate::tensor::{NnError, Real, Tensor};
use rayon::prelude::*;

/// `[outer, n, mid, c]` → `[outer, mid, n, c]` (or back, with `n` and `mid` swapped).
fn swap_middle<T: Real>(x: &[T], outer: usize, n: usize, mid: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    let block = n * mid * c;
    debug_assert_eq!(x.len(), outer * block);
    out.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .for_each(|(dst, src)| {
            for t in 0..n {
                for m in 0..mid {
                    let from = (t * mid + m) * c;
                    let to = (m * n + t) * c;
                    dst[to..to + c].copy_from_slice(&src[from..from + c]);
                }
            }
        });
    out
}

/// Sizes `(outer, n, mid)` of grid axis `a` of a `[batch, grid…, c]` shape.
fn split(shape: &[usize], a: usize) -> (usize, usize, usize) {
    let grid = &shape[1..shape.len() - 1];
    (
        shape[0] * grid[..a].iter().product::<usize>(),
        grid[a],
        grid[a + 1..].iter().product(),
    )
}

/// Sum over grid axes of a 1-D spectral convolution along that axis.
pub struct AxisSpectralConv<T: Real> {
    /// One 1-D convolution per grid axis.
    pub convs: Vec<SpectralConv<T>>,
    c_in: usize,
}

impl<T: Real> AxisSpectralConv<T> {
    /// `modes[a]` modes along axis `a`.
    pub fn new(c_in: usize, c_out: usize, modes: &[usize], seed: u64) -> Result<Self, NnError> {
        if modes.is_empty() || modes.len() > 3 {
            return Err(NnError::BadSpec {
                layer: "per-axis spectral conv",
                message: format!("expected 1 to 3 mode counts, got {modes:?}"),
            });
        }
        let convs = modes
            .iter()
            .enumerate()
            .map(|(a, &m)| SpectralConv::new(c_in, c_out, &[m], seed + a as u64))
            .collect::<Result<_, _>>()?;
        Ok(Self { convs, c_in })
    }

    /// Makes this layer's weights those of `other` (weight sharing across layers).
    pub fn copy_weights_from(&mut self, other: &Self) {
        for (c, o) in self.convs.iter_mut().zip(&other.convs) {
            c.weight.copy_from_slice(&o.weight);
        }
    }

    /// Adds this layer's weight gradients to `other`'s and clears its own.
    pub fn move_grads_into(&mut self, other: &mut Self) {
        for (c, o) in self.convs.iter_mut().zip(&mut other.convs) {
            for (g, t) in c.weight_grad.iter_mut().zip(&mut o.weight_grad) {
                *t = *t + *g;
                *g = T::zero();
            }
        }
    }

    /// Applies `f` to each axis' convolution on `x` with that axis next to the channels, and sums
    /// the results (`c_out` channels) back in the original layout.
    fn per_axis(
        &mut self,
        x: &Tensor<T>,
        c_out: impl Fn(usize) -> usize,
        f: impl Fn(&mut SpectralConv<T>, &Tensor<T>) -> Result<Tensor<T>, NnError>,
    ) -> Result<Tensor<T>, NnError> {
        let d = self.convs.len();
        if x.shape.len() != d + 2 {
            return Err(NnError::Shape {
                layer: "per-axis spectral conv",
                expected: format!("[batch, {d} grid axes, channels]"),
                got: format!("{:?}", x.shape),
            });
        }
        for (a, conv) in self.convs.iter().enumerate() {
            let (n, m) = (x.shape[a + 1], conv.modes[0]);
            if m > n / 2 + 1 {
                return Err(NnError::Shape {
                    layer: "per-axis spectral conv",
                    expected: format!(
                        "a grid that holds {m} modes along axis {a} (at least {} points)",
                        2 * m - 2
                    ),
                    got: format!("shape {:?}", x.shape),
                });
            }
        }
        let c = x.channels();
        let mut out: Option<Tensor<T>> = None;
        for a in 0..d {
            let (outer, n, mid) = split(&x.shape, a);
            let moved = if mid == 1 {
                x.data.clone()
            } else {
                swap_middle(&x.data, outer, n, mid, c)
            };
            let y = f(
                &mut self.convs[a],
                &Tensor::from_vec(&[outer * mid, n, c], moved)?,
            )?;
            let co = c_out(a);
            let data = if mid == 1 {
                y.data
            } else {
                swap_middle(&y.data, outer, mid, n, co)
            };
            let mut shape = x.shape.clone();
            shape[d + 1] = co;
            let y = Tensor::from_vec(&shape, data)?;
            match &mut out {
                None => out = Some(y),
                Some(acc) => add_into(acc, &y),
            }
        }
        Ok(out.expect("at least one axis"))
    }
}

impl<T: Real> Layer<T> for AxisSpectralConv<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let outs: Vec<usize> = self.convs.iter().map(|c| c.c_out).collect();
        self.per_axis(x, |a| outs[a], |conv, xa| conv.forward(xa))
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c_in = self.c_in;
        self.per_axis(dy, |_| c_in, |conv, ga| conv.backward(ga))
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        self.convs
            .iter_mut()
            .enumerate()
            .flat_map(|(a, c)| prefixed(&format!("axis{a}"), c.parameters()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    #[test]
    fn per_axis_gradients_match_finite_differences_in_two_and_three_dimensions() {
        let mut layer = AxisSpectralConv::<f64>::new(2, 3, &[2, 3], 1).unwrap();
        let worst = check(&mut layer, &random(&[2, 5, 6, 2], 2));
        assert!(worst < 1e-6, "2-D: {worst:e}");
        let mut layer = AxisSpectralConv::<f64>::new(2, 2, &[1, 2, 2], 1).unwrap();
        let worst = check(&mut layer, &random(&[1, 3, 4, 5, 2], 3));
        assert!(worst < 1e-6, "3-D: {worst:e}");
    }

    #[test]
    fn too_many_modes_name_the_axis() {
        let mut layer = AxisSpectralConv::<f32>::new(1, 1, &[2, 5], 0).unwrap();
        let err = layer.forward(&Tensor::zeros(&[1, 8, 6, 1])).unwrap_err();
        assert!(
            err.to_string()
                .contains("5 modes along axis 1 (at least 8 points)"),
            "{err}"
        );
    }

    #[test]
    fn a_field_constant_along_one_axis_only_sees_the_other_axis_convolution_plus_a_mean() {
        // x(i, j) = f(j): the axis-0 convolution sees constants (mode 0 only), so
        // K(x) = W_0[0]·f + conv_1(f) along every row.
        let mut layer = AxisSpectralConv::<f64>::new(1, 1, &[2, 3], 4).unwrap();
        let f = [0.3, -1.0, 2.0, 0.5, 0.0, 1.5];
        let x = Tensor::from_vec(&[1, 4, 6, 1], (0..24).map(|p| f[p % 6]).collect()).unwrap();
        let y = layer.forward(&x).unwrap();
        let mut row = layer.convs[1]
            .forward(&Tensor::from_vec(&[1, 6, 1], f.to_vec()).unwrap())
            .unwrap();
        let w0 = layer.convs[0].weight[0];
        for (j, v) in row.data.iter_mut().enumerate() {
            *v += w0 * f[j];
        }
        for i in 0..4 {
            for j in 0..6 {
                assert!((y.data[i * 6 + j] - row.data[j]).abs() < 1e-12);
            }
        }
    }
}
