//! Pointwise layers: a linear map of the channels at every grid point (one matrix product over
//! all points of the batch), and GELU.

use super::{Layer, Param};
use crate::tensor::{vectorised, NnError, Real, Tensor, PARALLEL_CHUNK};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Rows per parallel task in the pointwise matrix products and elementwise maps.
const CHUNK_ROWS: usize = 4096;

/// `C ← C + A·B (+ bias on every row)` over row blocks of A in parallel: A is `rows × k`, B
/// `k × n`, both row-major.
fn gemm_rows_add<T: Real>(a: &[T], k: usize, b: &[T], bias: Option<&[T]>, n: usize, c: &mut [T]) {
    c.par_chunks_mut(CHUNK_ROWS * n)
        .zip(a.par_chunks(CHUNK_ROWS * k))
        .for_each(|(c, a)| {
            let rows = a.len() / k.max(1);
            // SAFETY: `c` is initialised, and the kernel writes only values into it.
            let c_uninit = unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) };
            if unsafe { T::rows_product(rows, k, n, a, b, bias, c_uninit, true) } {
                return;
            }
            if let Some(bias) = bias {
                for row in c.chunks_mut(n) {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = *v + *b;
                    }
                }
            }
            gemm_add(rows, k, n, a, b, c);
        });
}

/// The general GEMM's `C ← C + A·B` for row-major `A` (m × k), `B` (k × n) and `C` (m × n).
fn gemm_add<T: Real>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T]) {
    let row_major = |cols: usize| (cols as isize, 1);
    T::gemm(
        m,
        k,
        n,
        T::one(),
        a,
        row_major(k),
        b,
        row_major(n),
        T::one(),
        c,
        row_major(n),
    );
}

/// `A·B (+ bias on every row)` as a new tensor of `shape` (its last axis `n`), over row blocks
/// of A in parallel: A is `rows × k`, B `k × n`, both row-major. Written straight into fresh
/// memory.
fn gemm_rows_new<T: Real>(
    a: &[T],
    k: usize,
    b: &[T],
    bias: Option<&[T]>,
    n: usize,
    shape: &[usize],
) -> Tensor<T> {
    // SAFETY: each run of rows is written whole: by the kernel, by the product (β = 0), or by the
    // bias rows before the product adds to them.
    unsafe {
        Tensor::par_written(shape, CHUNK_ROWS * n, |run, c| {
            let rows = c.len() / n;
            let a = &a[run * CHUNK_ROWS * k..][..rows * k];
            if T::rows_product(rows, k, n, a, b, bias, c, false) {
                return;
            }
            let Some(bias) = bias else {
                return T::gemm_overwrite(rows, k, n, a, b, (n as isize, 1), c);
            };
            for row in c.chunks_mut(n) {
                for (v, b) in row.iter_mut().zip(bias) {
                    v.write(*b);
                }
            }
            gemm_add(
                rows,
                k,
                n,
                a,
                b,
                &mut *(c as *mut [MaybeUninit<T>] as *mut [T]),
            );
        })
    }
}

/// The `rows × cols` row-major matrix `m`, transposed.
fn transposed<T: Real>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..cols * rows)
        .map(|at| m[(at % rows) * cols + at / rows])
        .collect()
}

/// `y[p, :] = x[p, :]·W + b` at every point p; `W` is `c_in × c_out`, row-major.
#[derive(Debug, Clone)]
pub struct PointwiseLinear<T> {
    pub c_in: usize,
    pub c_out: usize,
    pub weight: Vec<T>,
    pub bias: Vec<T>,
    weight_grad: Vec<T>,
    bias_grad: Vec<T>,
    input: Option<Tensor<T>>,
}

impl<T: Real> PointwiseLinear<T> {
    /// Weights uniform in `±1/√c_in` (PyTorch's default for linear layers), from `seed`.
    pub fn new(c_in: usize, c_out: usize, bias: bool, seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (c_in as f64).sqrt();
        let mut draw = |n: usize| -> Vec<T> {
            (0..n)
                .map(|_| T::lit(rng.gen_range(-bound..bound)))
                .collect()
        };
        let weight = draw(c_in * c_out);
        let bias = if bias { draw(c_out) } else { Vec::new() };
        Self {
            c_in,
            c_out,
            weight_grad: vec![T::zero(); weight.len()],
            bias_grad: vec![T::zero(); bias.len()],
            weight,
            bias,
            input: None,
        }
    }

    fn check(&self, x: &Tensor<T>, want: usize, what: &str) -> Result<(), NnError> {
        if x.channels() != want {
            return Err(NnError::Shape {
                layer: "pointwise linear",
                expected: format!("{want} {what} channels"),
                got: format!("shape {:?}", x.shape),
            });
        }
        Ok(())
    }
}

impl<T: Real> PointwiseLinear<T> {
    /// `x·W + b`, keeping nothing.
    pub fn apply(&self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(x, self.c_in, "input")?;
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("a channel axis") = self.c_out;
        let bias = (!self.bias.is_empty()).then_some(&self.bias[..]);
        Ok(gemm_rows_new(
            &x.data,
            self.c_in,
            &self.weight,
            bias,
            self.c_out,
            &shape,
        ))
    }

    /// `out += x·W + b`, keeping nothing.
    pub fn apply_add(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<(), NnError> {
        self.check(x, self.c_in, "input")?;
        self.check(out, self.c_out, "output")?;
        let bias = (!self.bias.is_empty()).then_some(&self.bias[..]);
        gemm_rows_add(
            &x.data,
            self.c_in,
            &self.weight,
            bias,
            self.c_out,
            &mut out.data,
        );
        Ok(())
    }

    /// `dW += xᵀ·dy` and `db += Σ dy` for the input `x` of a forward pass.
    pub fn accumulate_grads(&mut self, x: &Tensor<T>, dy: &Tensor<T>) -> Result<(), NnError> {
        self.check(dy, self.c_out, "output-gradient")?;
        let (ci, co) = (self.c_in, self.c_out);
        let has_bias = !self.bias.is_empty();
        // Sums of per-block partial products.
        let partial: Vec<(Vec<T>, Vec<T>)> = x
            .data
            .par_chunks(CHUNK_ROWS * ci)
            .zip(dy.data.par_chunks(CHUNK_ROWS * co))
            .map(|(xb, gb)| {
                let rows = xb.len() / ci;
                let mut dw = vec![T::zero(); ci * co];
                let mut db = vec![T::zero(); if has_bias { co } else { 0 }];
                let sums = has_bias.then_some(&mut db[..]);
                if T::rows_transposed_product_add(rows, ci, co, xb, gb, &mut dw, sums) {
                    return (dw, db);
                }
                T::gemm(
                    ci,
                    rows,
                    co,
                    T::one(),
                    xb,
                    (1, ci as isize),
                    gb,
                    (co as isize, 1),
                    T::zero(),
                    &mut dw,
                    (co as isize, 1),
                );
                if has_bias {
                    for row in gb.chunks(co) {
                        for (g, v) in db.iter_mut().zip(row) {
                            *g = *g + *v;
                        }
                    }
                }
                (dw, db)
            })
            .collect();
        for (dw, db) in partial {
            for (g, v) in self.weight_grad.iter_mut().zip(dw) {
                *g = *g + v;
            }
            for (g, v) in self.bias_grad.iter_mut().zip(db) {
                *g = *g + v;
            }
        }
        Ok(())
    }

    /// `dy·Wᵀ`, added to `acc` when given (which is then returned), else a new tensor.
    pub fn input_grad(&self, dy: &Tensor<T>, acc: Option<Tensor<T>>) -> Result<Tensor<T>, NnError> {
        self.check(dy, self.c_out, "output-gradient")?;
        let (ci, co) = (self.c_in, self.c_out);
        let wt = transposed(&self.weight, ci, co);
        let Some(mut dx) = acc else {
            let mut shape = dy.shape.clone();
            *shape.last_mut().expect("a channel axis") = ci;
            return Ok(gemm_rows_new(&dy.data, co, &wt, None, ci, &shape));
        };
        self.check(&dx, ci, "input-gradient")?;
        gemm_rows_add(&dy.data, co, &wt, None, ci, &mut dx.data);
        Ok(dx)
    }
}

impl<T: Real> Layer<T> for PointwiseLinear<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let y = self.apply(x)?;
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let x = self.input.take().ok_or(NnError::NoForward {
            layer: "pointwise linear",
        })?;
        self.accumulate_grads(&x, dy)?;
        let dx = self.input_grad(dy, None);
        self.input = Some(x);
        dx
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = vec![Param {
            name: "weight".into(),
            value: &mut self.weight,
            grad: &mut self.weight_grad,
        }];
        if !self.bias.is_empty() {
            out.push(Param {
                name: "bias".into(),
                value: &mut self.bias,
                grad: &mut self.bias_grad,
            });
        }
        out
    }
}

#[inline(always)]
fn gelu_kernel<T: Real>(values: &mut [T], slope: &mut [MaybeUninit<T>]) {
    for (v, s) in values.iter_mut().zip(slope) {
        let x = *v;
        let (cdf, pdf) = x.normal_cdf_pdf();
        *v = x * cdf;
        s.write(cdf + x * pdf);
    }
}

#[inline(always)]
fn scale_kernel<T: Real>(g: &mut [T], s: &[T]) {
    for (g, &s) in g.iter_mut().zip(s) {
        *g = *g * s;
    }
}

/// `x ← GELU(x)` elementwise, returning the slope `GELU'(x) = Φ(x) + x·φ(x)` at the old
/// values. The slope is what the backward pass needs: it shares the forward's `erf` and `exp`,
/// and keeping it in place of the input makes the backward pass one multiply per value.
pub fn gelu_in_place<T: Real>(x: &mut Tensor<T>) -> Tensor<T> {
    let n = x.data.len();
    let mut slope = Vec::with_capacity(n);
    x.data
        .par_chunks_mut(PARALLEL_CHUNK)
        .zip(slope.spare_capacity_mut()[..n].par_chunks_mut(PARALLEL_CHUNK))
        .for_each(|(v, s)| {
            vectorised(
                #[inline(always)]
                || gelu_kernel(v, s),
            )
        });
    // SAFETY: the kernel wrote one slope per value, and the chunks cover all n.
    unsafe { slope.set_len(n) };
    Tensor {
        shape: x.shape.clone(),
        data: slope,
    }
}

/// The gradient through GELU, in place: `dy ← dy·slope`, with the slope from [`gelu_in_place`].
pub fn gelu_backward<T: Real>(slope: &Tensor<T>, dy: &mut Tensor<T>) -> Result<(), NnError> {
    if dy.shape != slope.shape {
        return Err(NnError::Shape {
            layer: "gelu",
            expected: format!("output gradient of shape {:?}", slope.shape),
            got: format!("{:?}", dy.shape),
        });
    }
    dy.data
        .par_chunks_mut(PARALLEL_CHUNK)
        .zip(slope.data.par_chunks(PARALLEL_CHUNK))
        .for_each(|(g, s)| {
            vectorised(
                #[inline(always)]
                || scale_kernel(g, s),
            )
        });
    Ok(())
}

/// `GELU(x) = x·Φ(x)` with the exact normal CDF (PyTorch's default).
#[derive(Debug, Clone, Default)]
pub struct Gelu<T> {
    /// `GELU'` at the input of the last forward pass.
    slope: Option<Tensor<T>>,
}

impl<T: Real> Gelu<T> {
    pub fn new() -> Self {
        Self { slope: None }
    }
}

impl<T: Real> Layer<T> for Gelu<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut y = x.clone();
        self.slope = Some(gelu_in_place(&mut y));
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let slope = self
            .slope
            .as_ref()
            .ok_or(NnError::NoForward { layer: "gelu" })?;
        let mut dx = dy.clone();
        gelu_backward(slope, &mut dx)?;
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    #[test]
    fn pointwise_linear_gradients_match_finite_differences() {
        for bias in [true, false] {
            let mut layer = PointwiseLinear::<f64>::new(3, 4, bias, 1);
            let worst = check(&mut layer, &random(&[2, 5, 3], 2));
            assert!(worst < 1e-7, "bias {bias}: {worst:e}");
        }
    }

    #[test]
    fn gelu_gradients_match_finite_differences_and_values_match_the_definition() {
        let mut layer = Gelu::<f64>::new();
        let worst = check(&mut layer, &random(&[2, 4, 3], 3));
        assert!(worst < 1e-7, "{worst:e}");
        // GELU(1) = Φ(1) = 0.841344746…; GELU(−1) = −(1 − Φ(1)).
        let y = layer
            .forward(&Tensor::from_vec(&[1, 2, 1], vec![1.0, -1.0]).unwrap())
            .unwrap();
        assert!((y.data[0] - 0.8413447460685429).abs() < 1e-12);
        assert!((y.data[1] + 0.15865525393145707).abs() < 1e-12);
    }

    #[test]
    fn wrong_channel_counts_and_missing_forward_are_clear_errors() {
        let mut layer = PointwiseLinear::<f32>::new(3, 4, true, 1);
        let err = layer.backward(&Tensor::zeros(&[1, 2, 4])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pointwise linear: backward called before forward"
        );
        let err = layer.forward(&Tensor::zeros(&[1, 2, 5])).unwrap_err();
        assert!(
            err.to_string().contains("expected 3 input channels"),
            "{err}"
        );
    }
}
