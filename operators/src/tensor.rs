//! The array conventions of the neural operators: dense channels-last tensors
//! `[batch, n_1, …, n_d, channels]` (so pointwise layers are one matrix product), generic over the
//! scalar ([`Real`]): models train in `f32`, and the tests check gradients in `f64`.

use rayon::prelude::*;
use std::mem::MaybeUninit;
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
    /// `C = A·B` for row-major `A` (m × k) and `B` (k × n, with the given strides) into the
    /// first `m·n` values of `c` (row-major, n columns), which need not be initialised: they all
    /// are afterwards.
    fn gemm_overwrite(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        b: &[Self],
        b_strides: (isize, isize),
        c: &mut [MaybeUninit<Self>],
    );
    /// `C ← A·B`, or `C ← C + A·B` with `accumulate`, for row-major `A` (m × k), `B` (k × n)
    /// and `C` (m × n), plus `bias` on every row when given, by the packing-free kernels of
    /// [`crate::kernels`]. Returns false, having done nothing, where those have no kernel (then
    /// use [`Real::gemm`]).
    ///
    /// # Safety
    /// With `accumulate`, the first m·n values of `c` must be initialised.
    #[allow(unused_variables, clippy::too_many_arguments)]
    unsafe fn rows_product(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        b: &[Self],
        bias: Option<&[Self]>,
        c: &mut [MaybeUninit<Self>],
        accumulate: bool,
    ) -> bool {
        false
    }
    /// `D ← D + Xᵀ·G` for row-major `X` (m × k), `G` (m × n) and `D` (k × n), and
    /// `s ← s + Σ_rows G` when `s` is given, by [`crate::kernels`]; false, having done nothing,
    /// where they have no kernel.
    #[allow(unused_variables)]
    fn rows_transposed_product_add(
        m: usize,
        k: usize,
        n: usize,
        x: &[Self],
        g: &[Self],
        d: &mut [Self],
        s: Option<&mut [Self]>,
    ) -> bool {
        false
    }
    fn erf(self) -> Self;
    fn lit(v: f64) -> Self;
    /// `(Φ(x), φ(x))`, the standard normal CDF and density, for GELU.
    fn normal_cdf_pdf(self) -> (Self, Self);
}

/// `e^x` for f32 without a libm call, so loops over slices vectorise: `x = k ln 2 + r` with
/// `|r| ≤ ln 2 / 2`, and a degree-6 Taylor polynomial for `e^r` (relative error below 2e-7).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5·2²³ (no libm floor, so it vectorises).
    const SHIFTER: f32 = 12_582_912.0;
    let y = x * std::f32::consts::LOG2_E + SHIFTER;
    let k = y - SHIFTER;
    // The integer k sits in the low mantissa bits of y: read it from there rather than with a
    // saturating `as i32`, which does not vectorise well.
    let ki = (y.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r / 720.0)))));
    f32::from_bits(((ki + 127) << 23) as u32) * p
}

/// `(Φ(x), φ(x))` in f32 with Abramowitz & Stegun 7.1.26 for erf (absolute error below 1.5e-7):
/// `erf z = 1 − t(a₁ + t(a₂ + …))·e^{−z²}`, `t = 1/(1 + p z)`, whose `e^{−z²}` at `z = x/√2` is
/// also the density's exponential.
#[inline(always)]
fn normal_cdf_pdf_f32(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let e = exp_f32(-z * z);
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * e;
    let erf = if x < 0.0 { -erf_abs } else { erf_abs };
    (0.5 * (1.0 + erf), e * 0.398_942_3)
}

macro_rules! real_impl {
    ($t:ty, $gemm:path, $erf:path, $cdf:expr $(, $extra:item)*) => {
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
            fn gemm_overwrite(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                b: &[Self],
                b_strides: (isize, isize),
                c: &mut [MaybeUninit<Self>],
            ) {
                let b_last = (k.saturating_sub(1) as isize * b_strides.0
                    + n.saturating_sub(1) as isize * b_strides.1) as usize;
                assert!(a.len() >= m * k, "gemm: A too short");
                assert!(k == 0 || b_last < b.len(), "gemm: B too short");
                assert!(c.len() >= m * n, "gemm: C too short");
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    c[..m * n].fill(MaybeUninit::new(0.0));
                    return;
                }
                // SAFETY: the operands are in bounds (checked above) and do not alias. With β = 0
                // the kernel writes every value of C and never reads it, so C may be
                // uninitialised (matrixmultiply's documented contract).
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        b_strides.0,
                        b_strides.1,
                        0.0,
                        c.as_mut_ptr().cast::<Self>(),
                        n as isize,
                        1,
                    );
                }
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn lit(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn normal_cdf_pdf(self) -> (Self, Self) {
                $cdf(self)
            }
            $($extra)*
        }
    };
}

real_impl!(
    f32,
    matrixmultiply::sgemm,
    libm::erff,
    normal_cdf_pdf_f32,
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_product(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [MaybeUninit<f32>],
        accumulate: bool,
    ) -> bool {
        // SAFETY: the caller's contract is the kernel's.
        unsafe { crate::kernels::product(m, k, n, a, b, bias, c, accumulate) }
    },
    fn rows_transposed_product_add(
        m: usize,
        k: usize,
        n: usize,
        x: &[f32],
        g: &[f32],
        d: &mut [f32],
        s: Option<&mut [f32]>,
    ) -> bool {
        crate::kernels::transposed_product_add(m, k, n, x, g, d, s)
    }
);
// f64 (the gradient checks) keeps the exact erf.
real_impl!(f64, matrixmultiply::dgemm, libm::erf, |x: f64| {
    (
        0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2)),
        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt(),
    )
});

/// Runs `f` compiled for AVX-512 (16 f32 lanes) or else AVX2 + FMA (8 lanes), whichever the CPU
/// has (picked at run time; the baseline x86-64 target vectorises only 4 wide). For hot
/// elementwise loops. Mark `f` `#[inline(always)]`: only code inlined into the wide function is
/// compiled wide, and LLVM will not inline a large closure by itself. Lane width does not change
/// any result (no contraction into FMAs).
#[inline(always)]
pub fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        unsafe fn widest<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the CPU has every feature `widest` is compiled for.
            return unsafe { widest(f) };
        }
        if avx2 {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { wide(f) };
        }
    }
    f()
}

/// The row-major multi-index of flat index `p` over `dims`, written into `idx`.
pub(crate) fn unravel(mut p: usize, dims: &[usize], idx: &mut [usize]) {
    for k in (0..dims.len()).rev() {
        idx[k] = p % dims[k];
        p /= dims[k];
    }
}

/// Elements per parallel task in elementwise loops: large enough to amortise the task, and the
/// loops inside stay plain so they vectorise.
pub(crate) const PARALLEL_CHUNK: usize = 1 << 15;

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

    /// A tensor of `shape` whose values `fill(run, values)` writes, `chunk` values per run, in
    /// parallel, with no zero fill first: [`Tensor::zeros`] costs a pass over memory that is
    /// wasted when every value is overwritten.
    ///
    /// # Safety
    /// `fill` must write every value of each run it is given.
    pub(crate) unsafe fn par_written(
        shape: &[usize],
        chunk: usize,
        fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + Send,
    ) -> Self {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n);
        data.spare_capacity_mut()[..n]
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .for_each(|(run, values)| fill(run, values));
        // SAFETY: `fill` wrote all `n` values (the caller's contract).
        unsafe { data.set_len(n) };
        Self {
            shape: shape.to_vec(),
            data,
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

    /// Every `stride`-th grid point on each axis, from index 0 (batch and channels kept): an axis
    /// of `n` points keeps `⌈n / stride⌉`. On a vertex grid with `n − 1` divisible by `stride`
    /// both ends stay, so a 65-point solution gives its 33-point restriction.
    pub fn subsample(&self, stride: usize) -> Tensor<T> {
        assert!(stride >= 1, "subsample stride must be at least 1");
        if stride == 1 || self.shape.len() < 3 {
            return self.clone();
        }
        let c = self.channels();
        let grid = self.grid();
        let kept: Vec<usize> = grid.iter().map(|&n| n.div_ceil(stride)).collect();
        let mut shape = vec![self.shape[0]];
        shape.extend(&kept);
        shape.push(c);
        let (src_points, dst_points): (usize, usize) =
            (grid.iter().product(), kept.iter().product());
        let mut data = Vec::with_capacity(self.shape[0] * dst_points * c);
        let mut idx = vec![0; kept.len()];
        for b in 0..self.shape[0] {
            let sample = &self.data[b * src_points * c..(b + 1) * src_points * c];
            for p in 0..dst_points {
                unravel(p, &kept, &mut idx);
                let src = idx
                    .iter()
                    .zip(grid)
                    .fold(0, |acc, (&i, &n)| acc * n + i * stride);
                data.extend_from_slice(&sample[src * c..(src + 1) * c]);
            }
        }
        Tensor { shape, data }
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
    /// A model spec out of range; `param.field` is its key in the model's config table.
    #[error("{model}.{param}")]
    Invalid {
        model: &'static str,
        param: crate::param::InvalidParam,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_f32_normal_cdf_and_density_match_the_exact_ones() {
        let mut worst: f64 = 0.0;
        for i in -8000..=8000 {
            let x = i as f64 / 1000.0;
            let (c, d) = (x as f32).normal_cdf_pdf();
            let (ce, de) = x.normal_cdf_pdf();
            worst = worst.max((c as f64 - ce).abs()).max((d as f64 - de).abs());
        }
        assert!(worst < 3e-7, "{worst:e}");
        let mut worst: f64 = 0.0;
        for i in -870..=880 {
            let x = i as f32 / 10.0;
            let rel = (exp_f32(x) as f64 / (x as f64).exp() - 1.0).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "exp: {worst:e}");
    }

    #[test]
    fn gemm_overwrite_ignores_what_c_held_and_matches_gemm() {
        let (m, k, n) = (5, 3, 4);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.71).cos()).collect();
        for b_strides in [(n as isize, 1), (1, k as isize)] {
            let mut want = vec![0.0; m * n];
            f64::gemm(
                m,
                k,
                n,
                1.0,
                &a,
                (k as isize, 1),
                &b,
                b_strides,
                0.0,
                &mut want,
                (n as isize, 1),
            );
            let mut got = vec![MaybeUninit::new(f64::NAN); m * n];
            f64::gemm_overwrite(m, k, n, &a, &b, b_strides, &mut got);
            let got: Vec<f64> = got.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(got, want);
        }
        let mut empty = vec![MaybeUninit::new(f64::NAN); 2 * 3];
        f64::gemm_overwrite(2, 0, 3, &[], &[], (3, 1), &mut empty);
        assert!(empty.iter().all(|v| unsafe { v.assume_init() } == 0.0));
    }

    #[test]
    fn subsampling_keeps_every_stride_th_point_of_each_grid_axis() {
        // value = 1000 b + 100 i + 10 j + channel on a [2, 5, 4, 2] tensor
        let shape = [2, 5, 4, 2];
        let mut data = Vec::new();
        for b in 0..2 {
            for i in 0..5 {
                for j in 0..4 {
                    for ch in 0..2 {
                        data.push((1000 * b + 100 * i + 10 * j + ch) as f64);
                    }
                }
            }
        }
        let t = Tensor::from_vec(&shape, data).unwrap();
        let s = t.subsample(2);
        assert_eq!(s.shape, vec![2, 3, 2, 2]);
        let mut want = Vec::new();
        for b in 0..2 {
            for i in [0, 2, 4] {
                for j in [0, 2] {
                    for ch in 0..2 {
                        want.push((1000 * b + 100 * i + 10 * j + ch) as f64);
                    }
                }
            }
        }
        assert_eq!(s.data, want);
        assert_eq!(t.subsample(1), t);
    }
}
